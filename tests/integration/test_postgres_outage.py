"""A real PostgreSQL outage: the test's own throwaway server is stopped while a video job runs and
started again (no torch, no Ray: the fake analyzer).

Regression of a user walkthrough: the outage killed the only job worker (the job stayed
``running`` for ever, later jobs ``queued``), ``/v1`` answered ``500 internal_error`` and
``/readyz`` said ready while the database was down, and ``trueframe keys list`` printed a
SQLAlchemy traceback. The same paths with a simulated outage: ``tests/unit/test_store_outage.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.settings import get_settings
from serving.jobs import runner as runner_module
from tests.support.gated_analyzer import GatedAnalyzer
from tests.support.hold import settings_in, small_clip
from tests.support.postgres import (
    PostgresServer,
    ServerUnavailable,
    _as_user,
    _run,
    _wait_ready,
    start_server,
)
from tests.support.servicekit import error_of, fake_service, poll_job


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """A server of this module alone (stopping the session's would break other tests)."""
    try:
        started = start_server()
    except ServerUnavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    if started.root is None:
        pytest.skip("TRUEFRAME_TEST_DATABASE_URL names a server this test cannot stop")
    try:
        yield started
    finally:
        started.stop()


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    assert server.root is not None
    assert server.bin_dir is not None
    _run(_as_user([str(server.bin_dir / "pg_ctl"), "-D", str(server.root / "data"), *args]), "pg_ctl")


def stop(server: PostgresServer) -> None:
    """Stop the server at once (connections are cut, as when its machine goes away)."""
    _pg_ctl(server, "-m", "immediate", "-w", "stop")


def restart(server: PostgresServer) -> None:
    """Start the stopped server again on the same port and socket folder."""
    assert server.root is not None
    port = server.admin_url.rsplit(":", 1)[1].split("/")[0]
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {server.root} -c fsync=off -c full_page_writes=off"
    _pg_ctl(server, "-l", str(server.root / "log"), "-o", options, "-w", "start")
    _wait_ready(server.admin_url)


def test_a_postgres_outage_during_a_video_job(
    server: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from serving.cli import main

    monkeypatch.setattr(runner_module, "STORE_RETRY_S", (0.1, 0.5))
    url = server.create_database()
    settings = settings_in(tmp_path).model_copy(update={"database_url": url})
    clip = small_clip(tmp_path)
    analyzer = GatedAnalyzer(settings)
    with fake_service(settings, analyzer) as service:
        client = service.client
        client.app.state.store_probe.max_age_s = 0.0  # type: ignore[attr-defined]
        assert client.get("/readyz").status_code == 200
        first = client.post("/v1/analyze?name=a.mp4", content=clip).json()["job_id"]
        assert analyzer.waiting.wait(10), "the job was never claimed"
        stop(server)
        try:
            analyzer.gate.set()  # progress writes, then the outcome, meet a stopped server
            assert analyzer.started.wait(10), "the analysis never got past its progress writes"
            answer = client.post("/v1/analyze?name=x.jpg", content=b"a text file, not a JPEG")
            assert answer.status_code == 503, answer.text
            assert error_of(answer)["code"] == "store_unavailable"
            assert "Retry-After" in answer.headers
            assert client.get("/readyz").status_code == 503
            monkeypatch.setenv("TRUEFRAME_DATABASE_URL", url)
            monkeypatch.setenv("TRUEFRAME_DATA_DIR", str(tmp_path / "data"))
            get_settings.cache_clear()
            try:
                assert main(["keys", "list"]) == 2
            finally:
                get_settings.cache_clear()
            err = capsys.readouterr().err
            assert err.startswith("error: store_unavailable: cannot reach the database at "), err
            assert "Traceback" not in err
        finally:
            restart(server)
        done = poll_job(client, first, timeout=30)
        assert done["status"] == "succeeded", done
        second = client.post("/v1/analyze?name=b.mp4", content=clip).json()["job_id"]
        assert poll_job(client, second, timeout=30)["status"] == "succeeded"
        assert client.get("/readyz").status_code == 200
