"""Helpers for the service tests: settings over a temp data dir, a live uvicorn server, a TestClient
app over the fake analyzer, polling jobs, a webhook sink."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi.testclient import TestClient

from detector.settings import Settings
from serving.analyzer import Analyzer
from serving.http.app import create_app
from serving.jobs.store import JobStore
from serving.jobs.store import open_store as open_settings_store
from serving.known.lookup import StoreKnownMedia
from tests.support.fake_analyzer import FakeAnalyzer

_THRESHOLDS = (
    ("authentic", 0.1),
    ("likely_authentic", 0.3),
    ("likely_manipulated", 0.7),
    ("manipulated", 0.9),
)
SMALL_TEST_FACE_PX = 40
"""The generated media's faces are 50-60 px; MesoNet (the test face model, 256 px input) would by
default search only faces of 78 px and more (:func:`detector.stages.smallest_face`)."""

IDENTITY_FUSION = """
schema_version = 1
fitted_on = "test fixture: identity fusion of the face model"
face_model = "meso4.df"
[submodels.face]
intercept = 0.0
face = 1.0
""" + "".join(
    f"[thresholds.{verdict}]\nmanipulated = {p}\ntarget_rate = 0.05\nmeasured_rate = 0.05\n"
    for verdict, p in _THRESHOLDS
)
"""Fixed fusion parameters (the face logit as is): service tests need no fitted fusion file."""


def make_settings(data_dir: Path, weights_dir: Path, **serve: Any) -> Settings:
    """Settings for a test service: MesoNet face model (weights and fusion file in ``weights_dir``)."""
    return Settings(
        data_dir=data_dir,
        models={"weights_dir": weights_dir, "face_model": "meso4.df"},
        fusion={"fusion_file": weights_dir / "fusion.toml"},
        runtime={"device": "cpu"},
        sampling={"frames": 4},
        faces={"min_face_px": SMALL_TEST_FACE_PX},
        serve={"purge_interval_s": 3600, "webhook_backoff_s": 0.05, **serve},
    )


def open_store(settings: Settings) -> JobStore:
    """The store of ``settings``: PostgreSQL when ``database_url`` is set, else SQLite in the data dir."""
    return open_settings_store(settings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(settings: Settings, analyzer: Analyzer, store: JobStore, **options: Any) -> Iterator[str]:
    """Serve ``create_app(...)`` with uvicorn on 127.0.0.1 in a thread; yields the base URL.

    ``options`` go to ``uvicorn.Config`` (e.g. the service's own timeouts and connection cap)."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, analyzer, store),
        **{"host": "127.0.0.1", "port": port, "log_level": "warning", "lifespan": "on", **options},
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class FakeService:
    """An app over a :class:`FakeAnalyzer` in a TestClient (its lifespan, so its job worker, runs)."""

    client: TestClient
    store: JobStore
    analyzer: FakeAnalyzer
    settings: Settings


@contextmanager
def fake_service(
    settings: Settings, analyzer: FakeAnalyzer | None = None, *, known: bool = False
) -> Iterator[FakeService]:
    """``create_app(settings, analyzer or FakeAnalyzer(settings), store)`` served by a TestClient.

    ``known``: the fake analyzer hashes what it analyses and matches it against the store's hash
    lists (as the real service does).
    """
    store = open_store(settings)
    fake = analyzer or FakeAnalyzer(settings)
    if known:
        fake.known = StoreKnownMedia(store)
    try:
        # unexpected errors answer 500 as under uvicorn instead of being re-raised into the test
        with TestClient(create_app(settings, fake, store), raise_server_exceptions=False) as client:
            yield FakeService(client, store, fake, settings)
    finally:
        store.close()


def wait_job(
    client: httpx.Client,
    job_id: str,
    check: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
    **kwargs: Any,
) -> dict[str, Any]:
    """GET the job until ``check(job)`` holds; returns that job's JSON."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/jobs/{job_id}", **kwargs)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if check(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} never reached the expected state: {body}")
        time.sleep(0.02)


def poll_job(client: httpx.Client, job_id: str, timeout: float = 180.0, **kwargs: Any) -> dict[str, Any]:
    """GET the job until it is finished; returns its last JSON and every progress value seen."""
    deadline = time.monotonic() + timeout
    seen: list[float] = []
    while True:
        response = client.get(f"/v1/jobs/{job_id}", **kwargs)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        seen.append(body["progress"])
        if body["status"] in {"succeeded", "failed", "cancelled"}:
            body["_progress_seen"] = seen
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {body['status']} after {timeout}s")
        time.sleep(0.1)


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookSink:
    """A tiny HTTP receiver on 127.0.0.1; ``statuses`` are answered in turn (then 200)."""

    statuses: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            self.received.wait(0.1)
            self.received.clear()
        return self.deliveries


@contextmanager
def webhook_sink(statuses: list[int] | None = None) -> Iterator[WebhookSink]:
    sink = WebhookSink(statuses=list(statuses or []))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                sink.deliveries.append(Delivery(dict(self.headers.items()), body))
                status = sink.statuses.pop(0) if sink.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            sink.received.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a JSON error answer (asserting the shape)."""
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return dict(body["error"])


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def mesonet_weights_dir(shared_data: Path, base: Path) -> Path:
    """MesoNet weights imported once per test session from ../shared/data into ``base``/weights."""
    from detector.models._importing import import_weights

    target = base / "mesonet-weights"
    if not (target / ".done").is_file():
        import_weights("mesonet", shared_data / "weights" / "mesonet", target, names=["meso4.df"])
        (target / "fusion.toml").write_text(IDENTITY_FUSION)
        (target / ".done").touch()
    return target
