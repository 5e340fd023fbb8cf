"""Job callbacks: HMAC signature, URL rules, retry with backoff, and delivery by the running service
(over the fake analyzer; the same over the real pipeline is in ``tests/integration/test_api.py``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from detector.errors import InvalidRequest, WeightsMissing
from detector.settings import ServeSettings, Settings
from serving.auth.keys import create_key
from serving.jobs.records import Job
from serving.jobs.store import JobStore
from serving.jobs.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    check_callback_url,
    deliver,
    sign,
    verify,
)
from tests.support import mediagen
from tests.support.fake_analyzer import FakeAnalyzer
from tests.support.hostile import jpeg
from tests.support.servicekit import (
    error_of,
    fake_service,
    make_settings,
    open_store,
    poll_job,
    wait_until,
    webhook_sink,
)

pytestmark = pytest.mark.usefixtures("database_url")  # SQLite, then PostgreSQL


@pytest.fixture(scope="module")
def face_jpeg() -> bytes:
    return jpeg(mediagen.face_photo()[::4, ::4])


def test_signature_covers_timestamp_and_body() -> None:
    signature = sign("whsec_x", "1700000000", b'{"a":1}')
    assert signature.startswith("sha256=")
    assert len(signature) == len("sha256=") + 64
    assert verify("whsec_x", "1700000000", b'{"a":1}', signature)
    assert not verify("whsec_y", "1700000000", b'{"a":1}', signature)
    assert not verify("whsec_x", "1700000001", b'{"a":1}', signature)
    assert not verify("whsec_x", "1700000000", b'{"a":2}', signature)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/x", "file:///etc/passwd", "http://user:pw@example.org/", "/relative", "http://"],
)
def test_only_absolute_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(InvalidRequest):
        check_callback_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/x", "http://localhost/x", "https://10.1.2.3/", "http://[::1]/"]
)
def test_private_targets_need_the_setting(url: str) -> None:
    with pytest.raises(InvalidRequest, match="non-public"):
        check_callback_url(url, allow_private=False)
    assert check_callback_url(url, allow_private=True) == url


def test_delivery_retries_after_a_failure_then_stops() -> None:
    settings = ServeSettings(callback_allow_private=True, webhook_backoff_s=0.05, webhook_max_attempts=3)
    with webhook_sink([500]) as sink:
        assert asyncio.run(deliver(sink.url, b'{"x":1}', "s3cret", settings, "job_1"))
        assert [d.headers["X-Trueframe-Attempt"] for d in sink.deliveries] == ["1", "2"]
        last = sink.deliveries[-1]
        assert verify("s3cret", last.headers[TIMESTAMP_HEADER], last.body, last.headers[SIGNATURE_HEADER])
    with webhook_sink([500, 502, 503, 504]) as sink:
        assert not asyncio.run(deliver(sink.url, b"{}", "s3cret", settings, "job_2"))
        assert len(sink.deliveries) == 3  # webhook_max_attempts


def test_delivery_goes_on_from_the_attempts_a_stopped_service_made() -> None:
    settings = ServeSettings(callback_allow_private=True, webhook_backoff_s=0.05, webhook_max_attempts=3)
    counted: list[int] = []

    async def count(attempt: int) -> None:
        counted.append(attempt)

    with webhook_sink([500, 500]) as sink:
        assert not asyncio.run(deliver(sink.url, b"{}", "s3cret", settings, "job_3", made=2, count=count))
        assert [d.headers["X-Trueframe-Attempt"] for d in sink.deliveries] == ["3"]
        assert counted == [3]
        assert not asyncio.run(deliver(sink.url, b"{}", "s3cret", settings, "job_3", made=3, count=count))
        assert len(sink.deliveries) == 1, "all attempts were made before the restart: none is left"


def _stopped_service(tmp_path: Path, url: str) -> tuple[Settings, JobStore, Job]:
    """The store a stopped service left: a keyed job whose callback (and events) go to ``url``;
    at most 3 webhook attempts."""
    settings = make_settings(
        tmp_path / "data", tmp_path / "weights", callback_allow_private=True, webhook_max_attempts=3
    )
    store = open_store(settings)
    key = create_key(store, "hooks")
    job = store.create_job(
        owner=f"key:{key.key.id}", sha256="ab" * 32, options={}, name="a.jpg", callback_url=url
    )
    return settings, store, job


def test_a_restarted_service_keeps_counting_a_pending_callbacks_attempts(tmp_path: Path) -> None:
    with webhook_sink([500, 500, 500, 500]) as sink:
        settings, store, job = _stopped_service(tmp_path, sink.url)
        store.finish(job.id, "failed", 3600, error=("corrupt_media", "x"))
        store.count_callback_attempt(job.id, 2)  # the service that made two attempts stopped
        store.close()
        with fake_service(settings) as service:
            assert wait_until(lambda: service.store.get(job.id).callback_state == "failed", timeout=20)
            assert service.store.get(job.id).callback_attempts == 3
        assert [d.headers["X-Trueframe-Attempt"] for d in sink.deliveries] == ["3"]


def test_a_restarted_service_keeps_counting_a_pending_events_attempts(tmp_path: Path) -> None:
    from serving.reviews.events import add_event, count_event_attempt, event_states

    with webhook_sink([500, 500, 500, 500]) as sink:
        settings, store, job = _stopped_service(tmp_path, sink.url)
        spent, half = (add_event(store, job, name, {}) for name in ("appeal.opened", "appeal.in_review"))
        assert spent is not None
        assert half is not None
        count_event_attempt(store, spent.id, 3)  # every attempt made before the stop
        count_event_attempt(store, half.id, 2)
        store.close()
        with fake_service(settings) as service:
            done = {"failed"}
            assert wait_until(lambda: {s for _, s in event_states(service.store, job.id)} == done, timeout=20)
        sent = [d.headers for d in sink.deliveries if "X-Trueframe-Event" in d.headers]  # not the job's own
        assert [(h["X-Trueframe-Event"], h["X-Trueframe-Attempt"]) for h in sent] == [
            ("appeal.in_review", "3")
        ]


def test_service_posts_the_signed_final_job_and_retries(tmp_path: Path, face_jpeg: bytes) -> None:
    settings = make_settings(tmp_path / "data", tmp_path / "weights", callback_allow_private=True)
    store = open_store(settings)
    key = create_key(store, "hooks")
    store.close()
    with webhook_sink([500]) as sink, fake_service(settings) as service:
        client = service.client
        client.headers["X-API-Key"] = key.token
        posted = client.post(
            "/v1/analyze", params={"name": "a.jpg", "callback_url": sink.url}, content=face_jpeg
        )
        assert posted.status_code == 202, posted.text  # a callback makes even an image a job
        job = poll_job(client, posted.json()["job_id"], timeout=30)
        assert job["status"] == "succeeded", job
        deliveries = sink.wait_for(2)
        assert [d.headers["X-Trueframe-Attempt"] for d in deliveries] == ["1", "2"]  # 500 first: retried
        for delivery in deliveries:
            headers = delivery.headers
            assert headers["X-Trueframe-Job"] == job["job_id"]
            assert verify(
                key.webhook_secret, headers[TIMESTAMP_HEADER], delivery.body, headers[SIGNATURE_HEADER]
            )
        sent = json.loads(deliveries[-1].body)
        assert (sent["job_id"], sent["status"]) == (job["job_id"], "succeeded")
        assert sent["report"] == job["report"]
        assert "callback" not in sent  # sent while its own delivery is still pending
        delivered = {"url": sink.url, "state": "delivered", "attempts": 2}
        assert wait_until(lambda: client.get(f"/v1/jobs/{job['job_id']}").json()["callback"] == delivered)
        assert service.store.query(
            "SELECT callback_state FROM jobs WHERE id=?", (job["job_id"],)
        )[0]["callback_state"] == "delivered"  # fmt: skip
        refused = client.post("/v1/analyze", params={"callback_url": "ftp://x/"}, content=face_jpeg)
        assert refused.status_code == 400
        assert error_of(refused)["code"] == "invalid_request"


def test_a_failed_job_is_posted_with_its_error(tmp_path: Path, face_jpeg: bytes) -> None:
    settings = make_settings(tmp_path / "data", tmp_path / "weights", callback_allow_private=True)
    store = open_store(settings)
    key = create_key(store, "hooks")
    store.close()
    analyzer = FakeAnalyzer(settings, error=WeightsMissing("import the weights first"))
    with webhook_sink() as sink, fake_service(settings, analyzer) as service:
        client = service.client
        posted = client.post(
            "/v1/analyze",
            params={"callback_url": sink.url},
            content=face_jpeg,
            headers={"X-API-Key": key.token},
        )
        assert posted.status_code == 202, posted.text
        (delivery,) = sink.wait_for(1)
    sent = json.loads(delivery.body)
    assert sent["status"] == "failed"
    assert sent["error"] == {"code": "weights_missing", "message": "import the weights first"}
    headers = delivery.headers
    assert verify(key.webhook_secret, headers[TIMESTAMP_HEADER], delivery.body, headers[SIGNATURE_HEADER])


def test_a_callback_needs_a_secret_to_sign_with(tmp_path: Path, face_jpeg: bytes) -> None:
    settings = make_settings(tmp_path / "data", tmp_path / "weights", callback_allow_private=True)
    with webhook_sink() as sink, fake_service(settings) as service:
        anonymous = service.client.post("/v1/analyze", params={"callback_url": sink.url}, content=face_jpeg)
        assert anonymous.status_code == 400
        assert "API key" in error_of(anonymous)["message"]
        assert service.analyzer.calls == []


def test_private_callback_targets_are_refused_by_default(tmp_path: Path, face_jpeg: bytes) -> None:
    settings = make_settings(tmp_path / "data", tmp_path / "weights", webhook_secret="whsec_service")
    with fake_service(settings) as service:
        refused = service.client.post(
            "/v1/analyze", params={"callback_url": "http://127.0.0.1:9/hook"}, content=face_jpeg
        )
        assert refused.status_code == 400
        assert "non-public" in error_of(refused)["message"]
