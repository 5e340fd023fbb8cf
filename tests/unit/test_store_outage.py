"""The service through a store outage, simulated: the store's engine raises SQLAlchemy's connection
errors while "down" (no torch, no Ray). A real PostgreSQL server stopped and started again:
``tests/integration/test_postgres_outage.py``.

Regressions of a user walkthrough on PostgreSQL: an outage during a video job killed the only job
worker (the job stayed ``running``, later jobs ``queued``, ``/readyz`` said ready); with the
database down every ``/v1`` request was ``500 internal_error``; recovery of running jobs ran only at
start-up.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from detector.errors import StoreUnavailable
from detector.settings import get_settings
from serving.jobs import runner as runner_module
from serving.jobs.store import JobStore
from serving.store.engine import is_connection_error, unavailable
from tests.support.fake_analyzer import FakeAnalyzer
from tests.support.gated_analyzer import GatedAnalyzer
from tests.support.hold import settings_in, small_clip, small_photo
from tests.support.servicekit import error_of, fake_service, poll_job, wait_until


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return small_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "STORE_RETRY_S", (0.05, 0.2))


class FlakyEngine:
    """Wraps a store's engine; while ``down`` is set, ``connect()`` raises ``OperationalError`` as
    psycopg does for a refused connection. Everything else is the real engine's."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.down = threading.Event()
        self.refused = 0

    def connect(self) -> Any:
        if self.down.is_set():
            self.refused += 1
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused (simulated)"))
        return self.engine.connect()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


@contextmanager
def flaky(store: JobStore) -> Iterator[FlakyEngine]:
    real = store.engine
    wrapper = FlakyEngine(real)
    store.engine = wrapper  # type: ignore[assignment]
    try:
        yield wrapper
    finally:
        store.engine = real


# -- the mapping -----------------------------------------------------------------------------------


def test_only_connection_level_errors_mean_unavailable() -> None:
    refused = OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
    assert is_connection_error(refused)
    assert is_connection_error(InterfaceError("SELECT 1", {}, Exception("connection already closed")))
    locked = OperationalError("UPDATE jobs", {}, sqlite3.OperationalError("database is locked"))
    assert is_connection_error(locked)
    typo = OperationalError("SELEC 1", {}, sqlite3.OperationalError('near "SELEC": syntax error'))
    assert not is_connection_error(typo), "a SQL mistake on SQLite is a bug, not an outage"
    assert not is_connection_error(ProgrammingError("SELECT x", {}, Exception("no column x")))
    # PostgreSQL: a server that answers with an error is not an outage, unless the error says so
    deadlock = OperationalError("UPDATE jobs", {}, _PgError("deadlock detected", "40P01"))
    assert not is_connection_error(deadlock), "retrying a lasting non-outage would pin a worker"
    assert is_connection_error(OperationalError("SELECT 1", {}, _PgError("shutting down", "57P01")))
    assert is_connection_error(OperationalError("SELECT 1", {}, _PgError("connection failure", "08006")))
    # every pooled connection stuck on a database that stopped answering
    assert is_connection_error(PoolTimeout("QueuePool limit of size 5 overflow 20 reached"))


class _PgError(Exception):
    """A driver error carrying a SQLSTATE, as psycopg's do."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def test_a_password_in_the_query_string_is_hidden_too() -> None:
    url = "postgresql://tf@db.internal/trueframe?sslmode=require&password=s3cret"
    exc = unavailable(url, OperationalError("SELECT 1", {}, Exception("refused")))
    assert "s3cret" not in exc.message
    assert "password=***" in exc.message


def test_the_typed_error_names_the_database_without_its_password() -> None:
    exc = unavailable(
        "postgresql://tf:s3cret@db.internal:5432/trueframe",
        OperationalError("SELECT 1", {}, Exception("connection refused\n\tIs the server running?")),
    )
    assert isinstance(exc, StoreUnavailable)
    assert (exc.code, exc.http_status) == ("store_unavailable", 503)
    assert "s3cret" not in exc.message
    assert exc.message == (
        "cannot reach the database at postgresql://tf:***@db.internal:5432/trueframe: "
        "connection refused Is the server running?"
    )


def test_every_store_call_raises_the_typed_error_while_down(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "s.sqlite3")
    try:
        with flaky(store) as engine:
            engine.down.set()
            with pytest.raises(StoreUnavailable):
                store.active_count()
            with pytest.raises(StoreUnavailable):
                store.create_job(owner="a", sha256="ab" * 32, options={}, media=b"x")
            with pytest.raises(StoreUnavailable):
                store.ping()
            engine.down.clear()
            store.ping()
        with pytest.raises(OperationalError, match="syntax error"):  # a bug stays a bug
            store.query("SELEC 1")
    finally:
        store.close()


# -- 1: the job worker survives an outage ----------------------------------------------------------


def test_an_outage_during_a_video_job_does_not_stop_the_worker(tmp_path: Path, clip: bytes) -> None:
    settings = settings_in(tmp_path)
    analyzer = GatedAnalyzer(settings)
    with fake_service(settings, analyzer) as service, flaky(service.store) as engine:
        client = service.client
        first = client.post("/v1/analyze?name=a.mp4", content=clip).json()["job_id"]
        assert analyzer.waiting.wait(10), "the job was never claimed"
        engine.down.set()  # the database goes away while the job runs
        analyzer.gate.set()  # its progress writes and its outcome now fail
        assert wait_until(lambda: engine.refused >= 3, timeout=10)
        time.sleep(0.3)  # let the worker retry a few times while the store is down
        engine.down.clear()
        done = poll_job(client, first, timeout=20)
        assert done["status"] == "succeeded", done
        second = client.post("/v1/analyze?name=b.mp4", content=clip).json()["job_id"]
        assert poll_job(client, second, timeout=20)["status"] == "succeeded"
        assert client.get("/readyz").status_code == 200


def test_an_outage_when_claiming_leaves_the_job_queued_then_runs_it(tmp_path: Path, clip: bytes) -> None:
    settings = settings_in(tmp_path)
    analyzer = FakeAnalyzer(settings, hold=threading.Event())
    assert analyzer.hold is not None
    with fake_service(settings, analyzer) as service, flaky(service.store) as engine:
        client = service.client
        first = client.post("/v1/analyze?name=a.mp4", content=clip).json()["job_id"]
        second = client.post("/v1/analyze?name=b.mp4", content=clip).json()["job_id"]
        assert analyzer.started.wait(10)
        engine.down.set()
        analyzer.hold.set()  # the first job ends while the store is down; the second cannot be claimed
        assert wait_until(lambda: engine.refused >= 3, timeout=10)
        engine.down.clear()
        assert poll_job(client, first, timeout=20)["status"] == "succeeded"
        assert poll_job(client, second, timeout=20)["status"] == "succeeded"


class FailsOnce(FakeAnalyzer):
    """The analysis's hash-list lookup fails once with the store down, then works."""

    async def analyze(self, *args: Any, **kwargs: Any) -> Any:
        if not self.calls:
            self.calls.append(None)  # type: ignore[arg-type]
            raise StoreUnavailable("cannot reach the database at postgresql://tf:***@db:5432/x: refused")
        return await super().analyze(*args, **kwargs)


def test_a_store_error_inside_the_analysis_queues_the_job_again(tmp_path: Path, clip: bytes) -> None:
    """Before: the job failed for good with store_unavailable, its message (the database's address)
    served to the client; the media was fine, so the job is analysed again."""
    settings = settings_in(tmp_path)
    with fake_service(settings, FailsOnce(settings)) as service:
        job_id = service.client.post("/v1/analyze", content=clip).json()["job_id"]
        done = poll_job(service.client, job_id, timeout=20)
        assert done["status"] == "succeeded", done
        assert "postgresql" not in json.dumps(done)


def test_an_outcome_whose_commit_answer_was_lost_still_counts_as_finished(
    tmp_path: Path, clip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database commits the job's outcome, then the connection drops before the answer comes
    back: the retry finds the job already final (no row updated). Before, the runner then took the
    job for cancelled: waiters slept until their timeout, and no webhook or metric said it ended."""
    settings = settings_in(tmp_path, wait_timeout_s=20.0)
    with fake_service(settings) as service:
        real_finish = service.store.finish
        lost: list[str] = []

        def commits_then_loses_the_answer(job_id: str, *args: Any, **kwargs: Any) -> Any:
            job = real_finish(job_id, *args, **kwargs)
            if not lost:
                lost.append(job_id)
                raise StoreUnavailable("cannot reach the database at postgresql://tf:***@db:5432/x: reset")
            return job

        monkeypatch.setattr(service.store, "finish", commits_then_loses_the_answer)
        client = service.client
        started = time.monotonic()
        answer = client.post("/v1/analyze?name=a.mp4&wait=true", content=clip)
        waited = time.monotonic() - started
        assert lost, "the outcome was never recorded"
        assert answer.status_code == 200, answer.text  # the report, not the job still waited on
        assert answer.json()["media"]["kind"] == "video"
        assert waited < settings.serve.wait_timeout_s / 2, "the waiter slept until its timeout"
        metrics = client.get("/metrics").text
        assert 'trueframe_jobs_finished_total{status="succeeded"} 1.0' in metrics


def test_a_job_another_worker_took_over_and_finished_is_not_announced_twice(
    tmp_path: Path, clip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several replicas on one database: this one could not reach the store for a while, another's
    sweep took its job for dead, claimed it again and finished it. Before, this runner's outcome was
    dropped but its lost-commit check read the other's outcome as its own: the job's webhook went
    out twice and it counted as finished here too."""
    settings = settings_in(tmp_path, wait_timeout_s=20.0)
    with fake_service(settings) as service:
        store, real_finish = service.store, service.store.finish
        taken: list[str] = []

        def taken_over_first(job_id: str, *args: Any, **kwargs: Any) -> Any:
            if not taken:  # the other replica, while this one was cut off
                taken.append(job_id)
                assert store.requeue(job_id)
                other = store.claim(job_id)
                assert other is not None
                report = {"media": {"kind": "video"}, "by": "the other replica"}
                assert real_finish(job_id, "succeeded", 60.0, report=report, claim=other.claims)
            return real_finish(job_id, *args, **kwargs)

        monkeypatch.setattr(store, "finish", taken_over_first)
        client = service.client
        started = time.monotonic()
        waited = client.post("/v1/analyze?name=a.mp4&wait=true", content=clip)
        assert time.monotonic() - started < 10, "the waiter here slept until its timeout"
        assert waited.status_code == 200, waited.text
        assert waited.json()["by"] == "the other replica"
        done = poll_job(client, waited.headers["x-trueframe-job"], timeout=20)
        assert done["status"] == "succeeded"
        assert taken == [done["job_id"]]
        assert 'trueframe_jobs_finished_total{status="succeeded"}' not in client.get("/metrics").text


# -- 3: 503 store_unavailable and readiness --------------------------------------------------------


def test_requests_that_need_the_store_are_503_while_it_is_down(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    with fake_service(settings) as service, flaky(service.store) as engine:
        client = service.client
        engine.down.set()
        for answer in (
            client.post("/v1/analyze?name=x.jpg", content=b"just some text, not a JPEG"),
            client.post("/v1/analyze", content=small_photo()),
            client.get("/v1/jobs/job_" + "a" * 22),
        ):
            assert answer.status_code == 503, answer.text
            error = error_of(answer)
            assert error["code"] == "store_unavailable"
            assert error["message"] == "the job store is unavailable; retry later"
            assert int(answer.headers["Retry-After"]) > 0
        engine.down.clear()
        assert client.post("/v1/analyze?name=x.jpg", content=b"just some text").status_code == 415


def test_readyz_is_not_ready_while_the_store_is_down(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    with fake_service(settings) as service, flaky(service.store) as engine:
        client = service.client
        probe = client.app.state.store_probe  # type: ignore[attr-defined]
        probe.max_age_s = 0.0
        assert client.get("/readyz").status_code == 200
        engine.down.set()
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert error_of(answer)["code"] == "not_ready"
        assert "store" in error_of(answer)["message"]
        engine.down.clear()
        assert client.get("/readyz").status_code == 200


def test_readyz_checks_the_store_at_most_once_per_interval(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    with fake_service(settings) as service:
        store = service.store
        pings: list[float] = []
        real = store.ping

        def counted() -> None:
            pings.append(time.monotonic())
            real()

        store.ping = counted  # type: ignore[method-assign]
        client = service.client
        client.app.state.store_probe.max_age_s = 60.0  # type: ignore[attr-defined]
        for _ in range(5):
            assert client.get("/readyz").status_code == 200
        assert len(pings) == 1


def test_readyz_answers_promptly_when_the_database_hangs(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    with fake_service(settings) as service:
        release = threading.Event()

        def hung() -> None:
            release.wait(30)

        service.store.ping = hung  # type: ignore[method-assign]
        probe = service.client.app.state.store_probe  # type: ignore[attr-defined]
        probe.timeout_s, probe.max_age_s = 0.3, 0.0
        calls = 0

        def hung_once() -> None:
            nonlocal calls
            calls += 1
            hung()

        service.store.ping = hung_once  # type: ignore[method-assign]
        try:
            started = time.monotonic()
            assert service.client.get("/readyz").status_code == 503
            assert service.client.get("/readyz").status_code == 503
            assert calls == 1  # no second blocked thread while the first still hangs
            assert time.monotonic() - started < 5
        finally:
            release.set()
        # once the database answers again, so does readiness (a stuck flag kept it 503 for ever)
        service.store.ping = lambda: None  # type: ignore[method-assign]
        deadline = time.monotonic() + 5
        while service.client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "readiness never came back after the hang ended"
            time.sleep(0.05)


# -- 4: the command line with the database down -----------------------------------------------------


def _unreachable_url() -> str:
    from tests.support.servicekit import free_port

    return f"postgresql://tf:s3cret@127.0.0.1:{free_port()}/trueframe"  # nothing listens there


@pytest.mark.parametrize("argv", [["keys", "list"], ["serve", "--no-ray"], ["serve"]])
def test_commands_print_one_line_and_exit_2_when_the_database_is_down(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from serving.cli import main
    from serving.ray import runtime

    def no_ray(num_cpus: int | None = None) -> bool:
        raise AssertionError("Ray must not start when the store cannot be reached")

    monkeypatch.setattr(runtime, "init_ray", no_ray)
    url = _unreachable_url()
    monkeypatch.setenv("TRUEFRAME_DATABASE_URL", url)
    monkeypatch.setenv("TRUEFRAME_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()  # `keys` reads the process-wide settings
    started = time.monotonic()
    try:
        assert main(argv) == 2
    finally:
        get_settings.cache_clear()
    assert time.monotonic() - started < 15
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    redacted_url = url.replace("s3cret", "***")
    assert err.startswith(f"error: store_unavailable: cannot reach the database at {redacted_url}: "), err
    assert "s3cret" not in err


def test_a_scan_stops_before_ray_when_its_hash_lists_database_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: 37 s of Ray start-up, then every actor died opening the store (a traceback, exit 1)."""
    import ray

    from serving.cli import main

    source = tmp_path / "media"
    source.mkdir()
    (source / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0not really")
    url = _unreachable_url()
    monkeypatch.setenv("TRUEFRAME_DATABASE_URL", url)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray must not start"))
    get_settings.cache_clear()
    try:
        code = main(["scan", str(source), "--out", str(tmp_path / "rows.jsonl"), "--no-progress"])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert code == 2
    assert f"store_unavailable: cannot reach the database at {url.replace('s3cret', '***')}" in err
    assert not (tmp_path / "rows.jsonl").exists()
