"""Regressions of "Hold under attack and faults": HTTP transport (no torch, no Ray cluster, no model).

Multipart errors, file names held to the same limits as ``name``, body and head timeouts, the
connection cap.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from detector.settings import Settings
from serving.auth.keys import create_key
from serving.http.server import uvicorn_options
from tests.support.fake_analyzer import FakeAnalyzer
from tests.support.hold import settings_in, small_clip, small_photo
from tests.support.servicekit import error_of, fake_service, live_server, open_store


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return small_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def image() -> bytes:
    return small_photo()


# -- 8: multipart errors, body and head timeouts, connection cap ----------------------------------------


MANY_FIELDS = b"".join(
    b'--x\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(40)
)


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("multipart/form-data", b"--x\r\n", "Missing boundary"),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--\r\n",
            "name",
        ),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="o"\r\n\r\nv\r\n--x--\r\n',
            "'file'",
        ),
        ("multipart/form-data; boundary=x", b"garbage without any boundary", "Invalid multipart"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
            "'file'",
        ),
        ("multipart/form-data; boundary=x", MANY_FIELDS + b"--x--\r\n", "Too many fields"),
    ],
    ids=["no-boundary", "part-without-name", "no-file-field", "garbage", "unterminated", "many-fields"],
)
def test_malformed_multipart_is_a_typed_400_with_its_reason(
    tmp_path: Path, content_type: str, body: bytes, reason: str
) -> None:
    with fake_service(settings_in(tmp_path)) as service:
        answer = service.client.post("/v1/analyze", content=body, headers={"Content-Type": content_type})
        assert answer.status_code == 400, answer.text
        error = error_of(answer)
        assert error["code"] == "invalid_request"
        assert reason in error["message"]
        assert service.analyzer.calls == []


def test_a_multipart_file_name_is_held_to_the_same_255_characters_as_name(
    tmp_path: Path, image: bytes
) -> None:
    with fake_service(settings_in(tmp_path)) as service:
        for length, status in ((255, 200), (256, 400)):
            name = "n" * (length - 4) + ".jpg"
            answer = service.client.post("/v1/analyze", files={"file": (name, image, "image/jpeg")})
            assert answer.status_code == status, (length, answer.text[:200])
        assert error_of(answer)["code"] == "invalid_request"
        assert "longer than 255 characters" in error_of(answer)["message"]


def test_a_nul_in_a_file_name_is_refused_before_the_store(
    database_url: str | None, tmp_path: Path, image: bytes, clip: bytes
) -> None:
    """PostgreSQL text cannot hold NUL: such a name used to fail the job insert with a 500."""
    with fake_service(settings_in(tmp_path)) as service:
        for body in (image, clip):
            answer = service.client.post("/v1/analyze", params={"name": "evil\x00.jpg"}, content=body)
            assert answer.status_code == 400, answer.text[:300]
            assert error_of(answer)["code"] == "invalid_request"
        fine = service.client.post(
            "/v1/analyze", params={"name": "a\r\nb <i>.jpg", "wait": "true"}, content=clip
        )
        assert fine.status_code == 200, fine.text[:300]
        assert fine.json()["media"]["name"] == "a\r\nb <i>.jpg"


def test_a_stalled_body_is_answered_408_request_timeout() -> None:
    from serving.http.upload import BodyLimit

    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass

    async def receive() -> dict[str, Any]:
        if not sent and not getattr(receive, "first", False):
            receive.first = True  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b"x" * 10, "more_body": True}
        await asyncio.sleep(5)  # the client stalls
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/v1/analyze", "headers": []}
    started = time.monotonic()
    asyncio.run(BodyLimit(app, max_bytes=1000, timeout_s=0.2)(scope, receive, send))
    assert time.monotonic() - started < 3
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"]["code"] == "request_timeout"


@contextmanager
def _server(settings: Settings) -> Iterator[int]:
    """The app under uvicorn with the service's connection limits (as ``trueframe serve --no-ray``)."""
    analyzer, store = FakeAnalyzer(settings), open_store(settings)
    try:
        with live_server(settings, analyzer, store, **uvicorn_options(settings.serve)) as url:
            yield int(url.rsplit(":", 1)[1])
    finally:
        store.close()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(1024):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_slow_request_head_is_cut_and_the_cap_refuses_extra_connections(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, header_timeout_s=2.0, max_connections=2)
    with _server(settings) as port:
        assert _get(port, "/healthz").startswith(b"HTTP/1.1 200")
        opened = time.monotonic()
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # the head never ends
        assert _get(port, "/healthz").startswith(b"HTTP/1.1 503"), "over the cap while the slow one is open"
        assert _closed_within(slow, 10), "a connection whose head is late must be closed"
        assert 1.5 < time.monotonic() - opened < 10
        slow.close()
        assert _get(port, "/healthz").startswith(b"HTTP/1.1 200"), "the slot is free again"


def test_a_stalled_body_under_uvicorn_is_408_with_the_connection_closed(tmp_path: Path) -> None:
    """The 408 came through the app's error handler without ``Connection: close``, and the socket
    stayed open for the keep-alive time (README: "connection closed")."""
    with _server(settings_in(tmp_path, body_timeout_s=0.5, keep_alive_s=10)) as port:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        head = b"POST /v1/analyze HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n"
        sock.sendall(head + b"x" * 10)  # then stalls
        opened = time.monotonic()
        answer = b""
        sock.settimeout(5)
        while b"request_timeout" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"\r\nconnection: close\r\n" in answer.lower()
        assert _closed_within(sock, 3), "the connection must be closed after a 408"
        assert time.monotonic() - opened < 4
        sock.close()


def test_a_405_names_every_allowed_method(tmp_path: Path) -> None:
    """HTTP requires ``Allow`` on a 405; it lists the methods of every route on the path."""
    with fake_service(settings_in(tmp_path)) as service:
        job = service.client.put("/v1/jobs/job_AAAAAAAAAAAAAAAAAAAAAA")
        assert job.status_code == 405
        assert error_of(job)["code"] == "method_not_allowed"
        assert job.headers["allow"] == "DELETE, GET"
        assert service.client.put("/v1/analyze").headers["allow"] == "POST"
        assert service.client.post("/static/app.js").headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/jobs/{id}"),
        ("POST", "/v1/jobs/{id}/appeal"),
        ("DELETE", "/v1/jobs/{id}"),
        ("GET", "/v1/jobs/{id}/reviews"),
        ("GET", "/v1/appeals/{id}"),
        ("DELETE", "/v1/hash-lists/{id}"),
    ],
)
def test_a_not_found_message_does_not_echo_a_long_id(tmp_path: Path, method: str, path: str) -> None:
    """A 10,000-character id came back whole in ``job_not_found`` (a 10 KB answer): cut it as
    ``key_not_found`` does."""
    long_id = "job_" + "a" * 10_000
    with fake_service(settings_in(tmp_path)) as service:
        admin = {"X-API-Key": create_key(service.store, "admin", role="admin").token}
        body = {"statement": "why"} if path.endswith("/appeal") else None
        answer = service.client.request(method, path.format(id=long_id), headers=admin, json=body)
        assert answer.status_code == 404
        assert len(answer.content) < 300
        assert error_of(answer)["message"].endswith(f"{long_id[:64]!r} (cut)")
        short = service.client.request(method, path.format(id="job_x"), headers=admin, json=body)
        assert error_of(short)["message"].endswith("'job_x'")


def test_raw_non_ascii_bytes_in_the_url_are_a_json_400(tmp_path: Path) -> None:
    """h11 refuses them before the app; the answer was uvicorn's plain-text ``Invalid HTTP request
    received.``, not the error envelope."""
    with _server(settings_in(tmp_path)) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall("GET /v1/analyze?name=é HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), answer[:200]
        assert b"content-type: application/json" in head.lower()
        error = json.loads(body)["error"]
        assert error["code"] == "invalid_request"
        assert "percent-encode" in error["message"]


def test_a_body_still_arriving_holds_no_place_in_the_queue(tmp_path: Path, clip: bytes) -> None:
    """An upload takes its ``serve.max_queue`` place once its body is in: clients trickling their
    bodies (each pause under ``serve.body_timeout_s``) could otherwise hold every place with no job."""
    import httpx

    settings = settings_in(tmp_path, max_queue=1, job_workers=0, body_timeout_s=30.0)
    with _server(settings) as port:
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
        time.sleep(0.5)  # its request is in the app, reading its body
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/analyze", content=clip, timeout=30)
        assert answer.status_code == 202, answer.text
        full = httpx.post(f"http://127.0.0.1:{port}/v1/analyze?frames=2", content=clip, timeout=30)
        assert full.status_code == 429, "the stored job holds the only place"
        slow.close()
