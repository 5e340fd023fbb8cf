"""Job callbacks: HMAC signature, URL rules, retry with backoff, and delivery by the running service."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from detector.errors import InvalidRequest
from detector.settings import ServeSettings
from serving.analyzer import InProcessAnalyzer
from serving.auth.keys import create_key
from serving.jobs.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    check_callback_url,
    deliver,
    sign,
    verify,
)
from tests import mediagen
from tests.servicekit import (
    live_server,
    make_settings,
    mesonet_weights_dir,
    open_store,
    poll_job,
    webhook_sink,
)


@pytest.fixture(scope="module")
def mesonet_weights(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mesonet_weights_dir(shared_data, tmp_path_factory.getbasetemp())


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


@pytest.mark.shared_data
@pytest.mark.slow
def test_service_posts_the_signed_final_job_and_retries(mesonet_weights: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", mesonet_weights, callback_allow_private=True)
    store = open_store(settings)
    key = create_key(store, "hooks")
    buf = io.BytesIO()
    Image.fromarray(mediagen.face_photo()[::2, ::2]).save(buf, format="JPEG", quality=90)
    analyzer = InProcessAnalyzer(settings)
    with webhook_sink([500]) as sink, live_server(settings, analyzer, store) as url:
        client = httpx.Client(base_url=url, headers={"X-API-Key": key.token}, timeout=120)
        posted = client.post(
            "/v1/analyze", params={"name": "a.jpg", "callback_url": sink.url}, content=buf.getvalue()
        )
        assert posted.status_code == 202, posted.text  # a callback makes even an image a job
        job = poll_job(client, posted.json()["job_id"])
        assert job["status"] == "succeeded", job
        deliveries = sink.wait_for(2)
        assert len(deliveries) == 2  # the first answer was 500: retried
        for delivery in deliveries:
            headers = delivery.headers
            assert verify(
                key.webhook_secret, headers[TIMESTAMP_HEADER], delivery.body, headers[SIGNATURE_HEADER]
            )
        sent = json.loads(deliveries[-1].body)
        assert sent["job_id"] == job["job_id"]
        assert sent["status"] == "succeeded"
        assert sent["report"]["media"]["kind"] == "image"
        refused = client.post("/v1/analyze", params={"callback_url": "ftp://x/"}, content=buf.getvalue())
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_request"
