"""A stop signal drains the in-process service (``trueframe serve --no-ray``): requests waiting on a
job (``?wait=true``) are answered at once with the job's 202 and ``Location``, and no queued job is
started any more; the job stays queued for the restart.

Regression of a user walkthrough: after SIGTERM the server waited for the waiting request (up to
``serve.wait_timeout_s``, 300 s by default) and meanwhile started the queued jobs.
"""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn

from serving.http.app import create_app
from serving.http.server import DrainingServer, uvicorn_options
from serving.jobs.store import open_store
from tests.support.gated_analyzer import GatedAnalyzer
from tests.support.hold import settings_in, small_clip
from tests.support.servicekit import free_port, wait_until

pytestmark = pytest.mark.usefixtures("database_url")


def test_a_stop_signal_answers_waiting_requests_and_starts_no_queued_job(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, wait_timeout_s=120.0)
    clip, store, gated = small_clip(tmp_path), open_store(settings), GatedAnalyzer(settings)
    app, port = create_app(settings, gated, store), free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options(settings.serve)
    )
    server = DrainingServer(config, on_stop=app.state.trueframe.runner.drain)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/v1/analyze"
    try:
        assert wait_until(lambda: server.started, timeout=30)
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(1) as pool:
            running = client.post(f"{url}?frames=2", content=clip).json()["job_id"]
            assert gated.waiting.wait(10), "the first job never started"
            waiting = pool.submit(client.post, f"{url}?frames=3&wait=true", content=clip)
            assert wait_until(lambda: len(store.queued_ids()) == 1, timeout=10)
            queued = store.queued_ids()[0]
            time.sleep(0.2)  # the waiter is asleep on its job
            stopped = time.monotonic()
            server.handle_exit(signal.SIGTERM, None)  # as the signal handler calls it
            answer = waiting.result(timeout=10)
            assert time.monotonic() - stopped < 5, "the waiting request held the shutdown"
            assert answer.status_code == 202, answer.text
            assert answer.json()["job_id"] == queued
            assert answer.headers["location"] == f"/v1/jobs/{queued}"
            gated.gate.set()  # the running job ends; the queued one must not start
        thread.join(timeout=30)
        assert not thread.is_alive()
        job = store.get(queued)
        assert job is not None
        assert job.status == "queued", "a queued job was started after the stop signal"
        assert store.get(running) is not None
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        store.close()


def test_a_job_gone_while_it_runs_stops_the_analysis_thread_through_the_bridge() -> None:
    """The real analyzers call progress from a worker thread (``bridge``); the runner's JobGone, raised
    on the event loop, has to come out of that thread's analysis to stop it (the fake analyzers call
    progress on the loop itself)."""
    import anyio

    from serving.analyzer import bridge
    from serving.jobs.runner import JobGone

    stages: list[float] = []

    async def progress(fraction: float, partial: dict[str, object]) -> None:
        stages.append(fraction)
        if fraction > 0.2:
            raise JobGone("job_x")

    def analysis() -> str:
        tell = bridge(progress)
        assert tell is not None
        for fraction in (0.1, 0.3, 0.6):
            tell(fraction, {})
        return "ran to its end"

    async def main() -> None:
        with pytest.raises(JobGone):
            await anyio.to_thread.run_sync(analysis)

    anyio.run(main)
    assert stages == [0.1, 0.3]
