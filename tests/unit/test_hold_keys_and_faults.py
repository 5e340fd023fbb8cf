"""Regressions of "Hold under attack and faults": keys and faults on the service side (no torch, no
Ray cluster, no model).

Jobs and media across keys, job ids by shape, the service staying closed once a key existed,
metrics for admins, generic internal errors, lost replicas. (Sessions of a revoked key and the
per-key result cache: ``test_keys.py``; HTTP transport: ``test_hold_http.py``; Ray start-up and the
command line: ``test_hold_cli.py``.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detector.settings import Settings
from serving.auth.keys import create_key, revoke_key
from serving.http.errors import ServiceUnavailable
from tests.support.fake_analyzer import FakeAnalyzer
from tests.support.hold import settings_in, small_clip, small_photo
from tests.support.servicekit import error_of, fake_service, open_store, poll_job


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return small_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def image() -> bytes:
    return small_photo()


def _keys(settings: Settings, *roles: str) -> list[str]:
    store = open_store(settings)
    try:
        return [create_key(store, f"k{i}", role=role).token for i, role in enumerate(roles)]  # type: ignore[arg-type]
    finally:
        store.close()


# -- 1, 2: jobs and media across keys; job ids by shape ------------------------------------------------


def test_another_keys_delete_leaves_the_job_and_its_media(tmp_path: Path, clip: bytes) -> None:
    settings = settings_in(tmp_path, job_workers=0)  # the job stays queued: its media stays on disk
    first, second = _keys(settings, "submitter", "submitter")
    with fake_service(settings) as service:
        client = service.client
        job_id = client.post("/v1/analyze", content=clip, headers={"X-API-Key": first}).json()["job_id"]
        media = list(service.store.media_dir.iterdir())
        assert [p.name for p in media] == [f"{job_id}.bin"]
        theirs = client.delete(f"/v1/jobs/{job_id}", headers={"X-API-Key": second})
        assert theirs.status_code == 404
        assert error_of(theirs)["code"] == "job_not_found"
        assert [p.read_bytes() == clip for p in media] == [True], "B's DELETE must not touch A's media"
        assert client.get(f"/v1/jobs/{job_id}", headers={"X-API-Key": first}).json()["status"] == "queued"
        assert client.delete(f"/v1/jobs/{job_id}", headers={"X-API-Key": first}).status_code == 204
        assert list(service.store.media_dir.iterdir()) == []


@pytest.mark.parametrize(
    "job_id",
    [
        "%00",
        "job_%00",
        "x" * 10_000,
        "job_" + "a" * 10_000,
        "..%2F..%2Fetc%2Fpasswd",
        "job_" + "a" * 21 + "%00",
    ],
    ids=["nul", "job-nul", "10000-chars", "job-10000-chars", "traversal", "22-with-nul"],
)
def test_malformed_job_ids_are_404_for_get_and_delete(tmp_path: Path, job_id: str) -> None:
    with fake_service(settings_in(tmp_path)) as service:
        for method in ("GET", "DELETE"):
            answer = service.client.request(method, f"/v1/jobs/{job_id}")
            assert answer.status_code == 404, (method, answer.text[:200])
            assert error_of(answer)["code"] in {"job_not_found", "not_found"}


# -- 7: closed once a key existed; metrics for admins ------------------------------------------------


def test_revoking_every_key_does_not_reopen_the_service(tmp_path: Path, clip: bytes) -> None:
    settings = settings_in(tmp_path)
    (token,) = _keys(settings, "submitter")
    with fake_service(settings) as service:
        assert revoke_key(service.store, token.split("_")[1])
        for answer in (
            service.client.post("/v1/analyze", content=clip),
            service.client.post("/v1/session"),
            service.client.post("/v1/analyze", content=clip, headers={"X-API-Key": token}),
        ):
            assert answer.status_code == 401
            assert error_of(answer)["code"] == "unauthorized"
        assert service.analyzer.calls == []


def test_allow_anonymous_keeps_the_service_open_after_keys_exist(tmp_path: Path, clip: bytes) -> None:
    settings = settings_in(tmp_path, allow_anonymous=True)
    (token,) = _keys(settings, "submitter")
    with fake_service(settings) as service:
        anonymous = service.client.post("/v1/analyze", content=clip)
        assert anonymous.status_code == 202, anonymous.text
        assert poll_job(service.client, anonymous.json()["job_id"], timeout=30)["status"] == "succeeded"
        bad = service.client.post("/v1/analyze", content=clip, headers={"X-API-Key": token + "x"})
        assert bad.status_code == 401, "a wrong key is refused, not treated as anonymous"


def test_metrics_need_an_admin_key_once_keys_exist(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    admin, submitter = _keys(settings, "admin", "submitter")
    with fake_service(settings) as service:
        client = service.client
        assert client.get("/metrics").status_code == 401
        forbidden = client.get("/metrics", headers={"X-API-Key": submitter})
        assert forbidden.status_code == 403
        assert error_of(forbidden)["code"] == "forbidden"
        allowed = client.get("/metrics", headers={"X-API-Key": admin})
        assert allowed.status_code == 200
        assert "trueframe_queue_depth" in allowed.text
    public = settings_in(tmp_path / "public", metrics_public=True)
    _keys(public, "submitter")
    with fake_service(public) as service:
        assert service.client.get("/metrics").status_code == 200


# -- 6: no internal text reaches clients; lost replicas -------------------------------------------------


SECRET = "secret-path /srv/trueframe/internal.py line 42"


def test_unexpected_errors_answer_a_generic_internal_error(tmp_path: Path, image: bytes, clip: bytes) -> None:
    settings = settings_in(tmp_path)
    with fake_service(settings, FakeAnalyzer(settings, error=RuntimeError(SECRET))) as service:
        sync = service.client.post("/v1/analyze", content=image)
        assert sync.status_code == 500
        assert error_of(sync)["code"] == "internal_error"
        job_id = service.client.post("/v1/analyze", content=clip).json()["job_id"]
        job = poll_job(service.client, job_id, timeout=30)
        waited = service.client.post("/v1/analyze?wait=true&frames=3", content=clip)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "internal_error"
    assert waited.status_code == 500
    for text in (sync.text, json.dumps(job), waited.text):
        assert "secret" not in text
        assert "RuntimeError" not in text
        assert "Traceback" not in text


def test_a_stage_that_stays_unavailable_answers_503(tmp_path: Path, image: bytes) -> None:
    settings = settings_in(tmp_path)
    gone = ServiceUnavailable("a stage of the service is unavailable; retry later")
    with fake_service(settings, FakeAnalyzer(settings, error=gone)) as service:
        answer = service.client.post("/v1/analyze", content=image)
    assert answer.status_code == 503
    assert error_of(answer)["code"] == "service_unavailable"


class _Lost:
    """A deployment response whose replica died."""

    def result(self) -> Any:
        from ray.exceptions import ActorUnavailableError

        raise ActorUnavailableError("the replica is gone", None)


class _Answer:
    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class _Raises:
    def __init__(self, cause: Exception) -> None:
        self.cause = cause

    def result(self) -> Any:
        from ray.exceptions import RayTaskError

        raise RayTaskError("prepare", "Traceback (most recent call last): ...", self.cause)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    from serving.ray import analyzer

    slept: list[float] = []
    monkeypatch.setattr(analyzer.time, "sleep", slept.append)
    return slept


def test_a_lost_replica_is_retried_on_another(no_backoff: list[float]) -> None:
    from serving.ray.analyzer import unwrap

    responses = iter([_Lost(), _Lost(), _Answer("done")])
    assert unwrap(lambda: next(responses)) == "done"
    assert len(no_backoff) == 2


def test_a_stage_lost_after_the_retries_is_service_unavailable(no_backoff: list[float]) -> None:
    from serving.ray.analyzer import RETRIES, unwrap

    calls = []

    def call() -> _Lost:
        calls.append(1)
        return _Lost()

    with pytest.raises(ServiceUnavailable) as raised:
        unwrap(call)
    assert len(calls) == RETRIES + 1
    assert raised.value.http_status == 503
    assert "replica" not in raised.value.message, "no Ray text reaches the client"


def test_typed_errors_cross_unchanged_and_bugs_are_not_retried(no_backoff: list[float]) -> None:
    from ray.exceptions import RayTaskError

    from detector.errors import CorruptMedia
    from serving.ray.analyzer import unwrap

    with pytest.raises(CorruptMedia):
        unwrap(lambda: _Raises(CorruptMedia("cut")))
    calls = []

    def buggy() -> _Raises:
        calls.append(1)
        return _Raises(ZeroDivisionError("bug"))

    with pytest.raises(RayTaskError):
        unwrap(buggy)
    assert calls == [1]
    assert no_backoff == []
