"""A typed error that is the service's fault (5xx: weights missing or corrupt, a bad trust file) is
logged, for an upload answered at once and for a job. Before: only the client saw it; the log said
nothing, so an operator learnt of it from the metrics' status counts alone."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from detector.errors import UnsupportedMediaType, WeightsChecksumMismatch
from detector.settings import Settings
from tests.support.fake_analyzer import FakeAnalyzer
from tests.support.hold import settings_in, small_clip, small_photo
from tests.support.servicekit import fake_service


def _broken(tmp_path: Path) -> tuple[Settings, FakeAnalyzer]:
    """Settings and an analyzer whose every analysis fails as the service's fault (corrupt weights)."""
    settings = settings_in(tmp_path)
    return settings, FakeAnalyzer(settings, error=WeightsChecksumMismatch("/w/x.safetensors has sha256 ab"))


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_upload_answered_with_a_service_side_error_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, broken = _broken(tmp_path)
    with caplog.at_level(logging.ERROR), fake_service(settings, broken) as service:
        assert service.client.post("/v1/analyze", content=small_photo()).status_code == 503
    logged = _errors(caplog)
    assert "POST /v1/analyze: weights_checksum_mismatch: /w/x.safetensors has sha256 ab" in logged, logged


def test_a_failed_job_with_a_service_side_error_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, broken = _broken(tmp_path)
    with caplog.at_level(logging.ERROR), fake_service(settings, broken) as service:
        job_id = service.client.post("/v1/analyze", content=small_clip(tmp_path)).json()["job_id"]
        deadline = time.monotonic() + 20
        while service.client.get(f"/v1/jobs/{job_id}").json()["status"] != "failed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    logged = _errors(caplog)
    assert f"job {job_id} failed: weights_checksum_mismatch: /w/x.safetensors has sha256 ab" in logged


def test_a_client_error_is_not_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_in(tmp_path)
    refused = FakeAnalyzer(settings, error=UnsupportedMediaType("not media"))
    with caplog.at_level(logging.WARNING), fake_service(settings, refused) as service:
        assert service.client.post("/v1/analyze", content=small_photo()).status_code == 415
    assert not [r for r in caplog.records if r.name.startswith("serving")]


def test_a_readiness_probe_while_not_ready_is_not_logged_as_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`/readyz` answers 503 `not_ready` while the models load: an operator's probe, not a fault
    (every probe of a warming service logged an ERROR line when every 5xx was logged)."""
    settings = settings_in(tmp_path)
    with (
        caplog.at_level(logging.WARNING),
        fake_service(settings, FakeAnalyzer(settings, ready=False)) as service,
    ):
        assert [service.client.get("/readyz").status_code for _ in range(3)] == [503] * 3
    assert _errors(caplog) == []


def test_serve_logs_its_info_lines_with_time_and_level(tmp_path: Path) -> None:
    """`trueframe serve` sets up its log (``serve.log_level``, INFO by default): until 2026-12-04
    nothing did, so a job recovered at start was never reported and warnings came without time or
    level. A job left running by a killed service is requeued at start, and says so."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import threading

    from serving.jobs.store import open_store

    settings = settings_in(tmp_path)
    store = open_store(settings)
    job = store.create_job(owner="anonymous", sha256="0" * 64, options={}, media=small_clip(tmp_path))
    assert store.claim(job.id) is not None  # running, as a killed service leaves it
    store.close()
    env = {**os.environ, "TRUEFRAME_DATA_DIR": str(settings.data_dir)}
    env["TRUEFRAME_MODELS__WEIGHTS_DIR"] = str(settings.models.weights_dir)
    args = [sys.executable, "-m", "serving.cli", "serve", "--no-ray", "--port", "0"]
    seen: list[str] = []
    with subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        reader = threading.Thread(target=lambda: seen.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()  # a reader thread: the test fails after its deadline, never hangs on a read
        try:
            deadline = time.monotonic() + 120
            while not any("recovered jobs" in line for line in seen):
                assert time.monotonic() < deadline, seen
                assert proc.poll() is None, seen
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    line = next(line for line in seen if "recovered jobs" in line)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.match(stamp + r" INFO serving\.jobs\.runner: recovered jobs: 1 back in the queue", line), line
