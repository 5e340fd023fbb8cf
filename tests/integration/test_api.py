"""The HTTP API on a live uvicorn server with the in-process analyzer and MesoNet weights (the real
pipeline; the same API over the fake analyzer is in ``tests/unit/test_api_fake.py``).

Image sync and the result cache, video jobs (polling and ``?wait=true``), every hostile input as a
typed 4xx JSON error, the streaming upload limit, operations endpoints and JSON errors for bad routes.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from detector.settings import Settings
from serving.analyzer import InProcessAnalyzer
from serving.auth.keys import create_key
from serving.http.app import create_app
from serving.jobs.store import JobStore
from serving.jobs.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.support import mediagen
from tests.support.hostile import HOSTILE, clip, jpeg
from tests.support.servicekit import (
    error_of,
    live_server,
    make_settings,
    mesonet_weights_dir,
    open_store,
    poll_job,
    webhook_sink,
)

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]  # MesoNet weights; models run on CPU

MAX_UPLOAD = 3_000_000


@dataclass
class Service:
    url: str
    client: httpx.Client
    store: JobStore
    settings: Settings


@pytest.fixture(scope="module")
def mesonet_weights(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mesonet_weights_dir(shared_data, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def service(mesonet_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data = tmp_path_factory.mktemp("api-data")
    settings = make_settings(data, mesonet_weights)
    settings.limits.max_image_bytes = settings.limits.max_video_bytes = MAX_UPLOAD
    store = open_store(settings)
    key = create_key(store, "api-tests", role="admin").token  # admin: it reads /metrics too
    headers = {"Authorization": f"Bearer {key}"}
    with (
        live_server(settings, InProcessAnalyzer(settings), store) as url,
        httpx.Client(base_url=url, headers=headers, timeout=180) as client,
    ):
        yield Service(url, client, store, settings)


@pytest.fixture(scope="module")
def face_jpeg() -> bytes:
    return jpeg(mediagen.face_photo()[::2, ::2])


def test_operations_endpoints(service: Service) -> None:
    client = service.client
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/analyze", "/v1/jobs/{job_id}", "/healthz", "/readyz", "/metrics"} <= set(paths)
    assert client.get("/docs").status_code == 200
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'trueframe_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics.text
    assert "trueframe_queue_depth" in metrics.text


def test_image_is_answered_with_its_report_then_from_cache(service: Service, face_jpeg: bytes) -> None:
    first = service.client.post("/v1/analyze", files={"file": ("face.jpg", face_jpeg, "image/jpeg")})
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["media"]["kind"] == "image"
    assert report["media"]["name"] == "face.jpg"
    assert report["tracks"], "the astronaut's face should be found"
    assert first.headers["x-trueframe-cache"] == "miss"
    again = service.client.post("/v1/analyze?name=other.jpg", content=face_jpeg)  # raw body, same bytes
    assert again.status_code == 200
    assert again.headers["x-trueframe-cache"] == "hit"
    assert again.json() == {**report, "media": {**report["media"], "name": "other.jpg"}}
    assert "trueframe_cache_hits_total 1.0" in service.client.get("/metrics").text


def test_video_job_is_polled_to_completion(service: Service, tmp_path: Path) -> None:
    posted = service.client.post("/v1/analyze?name=clip.mp4&frames=3", content=clip(tmp_path, 12))
    assert posted.status_code == 202, posted.text
    body = posted.json()
    assert body["status"] == "queued"
    assert posted.headers["location"] == body["links"]["self"] == f"/v1/jobs/{body['job_id']}"
    job = poll_job(service.client, body["job_id"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0
    assert job["partial"]["stage"] == "report"  # the last progress report before the end
    assert job["partial"]["frames_sampled"] == 3
    assert "faces_found" in job["partial"]
    assert job["partial"]["faces_found"] >= 1
    report = job["report"]
    assert report["media"]["kind"] == "video"
    assert len(report["frames"]) == 3
    assert job["error"] is None
    assert not list(service.store.media_dir.glob(f"{body['job_id']}*")), "media must go when the job ends"


def test_video_with_wait_returns_the_report(service: Service, tmp_path: Path) -> None:
    answer = service.client.post("/v1/analyze?name=w.mp4&wait=true&frames=2", content=clip(tmp_path, 10))
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["media"]["kind"] == "video"
    assert len(report["frames"]) == 2
    assert report["tracks"]


@pytest.mark.parametrize(("name", "status", "code", "make"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_a_typed_4xx(
    service: Service, name: str, status: int, code: str, make: Callable[[Path], bytes], tmp_path: Path
) -> None:
    answer = service.client.post("/v1/analyze", params={"name": name}, content=make(tmp_path))
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert error_of(answer)["code"] == code


def _raw_request(url: str, head: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(head.encode())
    return sock


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP response: headers, then ``content-length`` bytes of body (the server may reset after)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _expected_length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _expected_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(data) + 1


def test_oversize_upload_is_refused_before_the_body_ends(service: Service) -> None:
    key = service.client.headers["authorization"]
    head = (
        "POST /v1/analyze?name=huge.mp4 HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
        f"Content-Type: application/octet-stream\r\nAuthorization: {key}\r\n\r\n"
    )
    chunk = b"\x00" * 65_536
    would_send = 1_000_000_000
    sent = 0
    with _raw_request(service.url, head) as sock:
        while sent < would_send:  # the body of 1 GB is never finished: the answer must come first
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = _read_response(sock)
        closed = _closed_by_server(sock)
    # the client got its answer after about the limit plus what socket buffers hold, not 1 GB
    assert sent < MAX_UPLOAD + 32_000_000, f"the client could send {sent} bytes before being refused"
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"connection: close" in rest.lower()
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "payload_too_large"
    assert closed


def test_declared_oversize_length_is_refused_without_reading(service: Service) -> None:
    key = service.client.headers["authorization"]
    head = (
        "POST /v1/analyze HTTP/1.1\r\nHost: test\r\nContent-Length: 10000000000\r\n"
        f"Content-Type: video/mp4\r\nAuthorization: {key}\r\n\r\n"
    )
    with _raw_request(service.url, head) as sock:
        started = time.monotonic()
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"payload_too_large"' in answer
    assert time.monotonic() - started < 10
    details = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["details"]
    assert details["declared"] == 10_000_000_000  # nothing was received: not "received"
    assert "received" not in details


def test_a_json_body_is_held_to_the_small_limit_and_uploads_keep_theirs(service: Service) -> None:
    """A review or appeal could send up to the video limit (a 100 MB statement was read and parsed
    whole before its 400); bodies of routes without files now stop at SMALL_BODY_BYTES."""
    from serving.http.upload import SMALL_BODY_BYTES

    statement = "x" * (SMALL_BODY_BYTES + 1)
    sent = service.client.post("/v1/jobs/job_doesnotexist/appeal", json={"statement": statement})
    assert sent.status_code == 413, sent.text
    assert error_of(sent)["code"] == "payload_too_large"
    assert error_of(sent)["details"]["limit"] == SMALL_BODY_BYTES
    assert "the request body" in error_of(sent)["message"]
    key = service.client.headers["authorization"]
    head = (
        "POST /v1/jobs/job_doesnotexist/review HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000\r\n"
        f"Content-Type: application/json\r\nAuthorization: {key}\r\n\r\n"
    )
    with _raw_request(service.url, head) as sock:
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["details"]["declared"] == 1_000_000
    small = service.client.post("/v1/jobs/job_doesnotexist/appeal", json={"statement": "wrong"})
    assert small.status_code == 404  # under the limit the route answers as before
    upload = service.client.post("/v1/analyze?name=big.bin", content=b"\x00" * (SMALL_BODY_BYTES * 2))
    assert upload.status_code != 413  # media keeps the upload limit (this one is simply not media)
    assert error_of(upload)["code"] != "payload_too_large"


def test_a_multipart_body_cut_before_its_end_says_so(service: Service, face_jpeg: bytes) -> None:
    boundary = "tfboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + face_jpeg  # no closing boundary
    answer = service.client.post(
        "/v1/analyze", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert answer.status_code == 400
    assert "a body cut off before its closing boundary" in error_of(answer)["message"]


def test_bad_routes_and_parameters_are_json_errors(service: Service, face_jpeg: bytes) -> None:
    missing = service.client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    wrong = service.client.put("/v1/analyze")
    assert wrong.status_code == 405
    assert error_of(wrong)["code"] == "method_not_allowed"
    bad = service.client.post("/v1/analyze?frames=0", content=face_jpeg)
    assert bad.status_code == 400
    assert error_of(bad)["code"] == "invalid_request"
    unknown = service.client.get("/v1/jobs/job_doesnotexist")
    assert unknown.status_code == 404
    assert error_of(unknown)["code"] == "job_not_found"


# -- lifecycle: queue limit, restart, delete, pages (TestClient apps on their own stores) -------------


@pytest.fixture(scope="module")
def analyzer(mesonet_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> InProcessAnalyzer:
    return InProcessAnalyzer(make_settings(tmp_path_factory.mktemp("unused"), mesonet_weights))


def test_full_queue_answers_429_with_retry_after(
    analyzer: InProcessAnalyzer, mesonet_weights: Path, tmp_path: Path, face_jpeg: bytes
) -> None:
    settings = make_settings(tmp_path / "data", mesonet_weights, job_workers=0, max_queue=1, retry_after_s=7)
    with TestClient(create_app(settings, analyzer, open_store(settings))) as client:
        assert client.post("/v1/analyze?name=a.mp4", content=clip(tmp_path, 10)).status_code == 202
        for body in (clip(tmp_path, 11), face_jpeg):
            full = client.post("/v1/analyze", content=body)
            assert full.status_code == 429
            assert full.headers["retry-after"] == "7"
            assert error_of(full)["code"] == "queue_full"


def test_a_queued_job_finishes_after_a_restart(
    analyzer: InProcessAnalyzer, mesonet_weights: Path, tmp_path: Path
) -> None:
    paused = make_settings(tmp_path / "data", mesonet_weights, job_workers=0)
    with TestClient(create_app(paused, analyzer, open_store(paused))) as client:
        posted = client.post("/v1/analyze?name=r.mp4&frames=2", content=clip(tmp_path, 10))
        assert posted.status_code == 202
        job_id = posted.json()["job_id"]
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
    running = make_settings(tmp_path / "data", mesonet_weights, job_workers=1)
    store = open_store(running)
    with TestClient(create_app(running, analyzer, store)) as client:
        job = poll_job(client, job_id)
    assert job["status"] == "succeeded", job
    assert job["report"]["media"]["name"] == "r.mp4"
    assert list(store.media_dir.iterdir()) == []


def test_delete_removes_the_job_and_its_media(
    analyzer: InProcessAnalyzer, mesonet_weights: Path, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "data", mesonet_weights, job_workers=0)
    store = open_store(settings)
    with TestClient(create_app(settings, analyzer, store)) as client:
        job_id = client.post("/v1/analyze?name=d.mp4", content=clip(tmp_path, 10)).json()["job_id"]
        assert [p.name for p in store.media_dir.iterdir()] == [f"{job_id}.bin"]
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
        assert list(store.media_dir.iterdir()) == []
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 404


def test_pages_carry_a_strict_csp_and_cors_is_off_by_default(
    analyzer: InProcessAnalyzer, mesonet_weights: Path, tmp_path: Path
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>trueframe</title>")
    settings = make_settings(tmp_path / "data", mesonet_weights)
    with TestClient(create_app(settings, analyzer, open_store(settings), static_dir=static)) as client:
        page = client.get("/", headers={"Origin": "https://evil.example"})
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "access-control-allow-origin" not in page.headers
        preflight = client.options(
            "/v1/analyze", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in preflight.headers
    allowed = make_settings(tmp_path / "data2", mesonet_weights, cors_origins=["https://desk.example"])
    with TestClient(create_app(allowed, analyzer, open_store(allowed), static_dir=static)) as client:
        answer = client.get("/healthz", headers={"Origin": "https://desk.example"})
        assert answer.headers["access-control-allow-origin"] == "https://desk.example"


def test_readyz_is_503_without_weights(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", tmp_path / "no-weights")
    with TestClient(create_app(settings, InProcessAnalyzer(settings), open_store(settings))) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert error_of(answer)["code"] == "not_ready"
        assert client.get("/healthz").status_code == 200


def test_service_posts_the_signed_final_job_and_retries(mesonet_weights: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", mesonet_weights, callback_allow_private=True)
    store = open_store(settings)
    key = create_key(store, "hooks")
    image = jpeg(mediagen.face_photo()[::2, ::2])
    analyzer = InProcessAnalyzer(settings)
    with webhook_sink([500]) as sink, live_server(settings, analyzer, store) as url:
        client = httpx.Client(base_url=url, headers={"X-API-Key": key.token}, timeout=120)
        posted = client.post("/v1/analyze", params={"name": "a.jpg", "callback_url": sink.url}, content=image)
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
        refused = client.post("/v1/analyze", params={"callback_url": "ftp://x/"}, content=image)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_request"
