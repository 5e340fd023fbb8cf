"""A typed error that is the service's fault (5xx: weights missing or corrupt, a bad trust file) is
logged, for an upload answered at once and for a job. Before: only the client saw it; the log said
nothing, so an operator learnt of it from the metrics' status counts alone."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from detector.errors import UnsupportedMediaType, WeightsChecksumMismatch
from tests.support.fake_analyzer import FakeAnalyzer
from tests.support.hold import settings_in, small_clip, small_photo
from tests.support.servicekit import fake_service


def test_an_upload_answered_with_a_service_side_error_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_in(tmp_path)
    broken = FakeAnalyzer(settings, error=WeightsChecksumMismatch("/w/x.safetensors has sha256 ab"))
    with caplog.at_level(logging.ERROR), fake_service(settings, broken) as service:
        assert service.client.post("/v1/analyze", content=small_photo()).status_code == 503
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "POST /v1/analyze: weights_checksum_mismatch: /w/x.safetensors has sha256 ab" in logged, logged


def test_a_failed_job_with_a_service_side_error_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_in(tmp_path)
    broken = FakeAnalyzer(settings, error=WeightsChecksumMismatch("/w/x.safetensors has sha256 ab"))
    with caplog.at_level(logging.ERROR), fake_service(settings, broken) as service:
        job_id = service.client.post("/v1/analyze", content=small_clip(tmp_path)).json()["job_id"]
        deadline = time.monotonic() + 20
        while service.client.get(f"/v1/jobs/{job_id}").json()["status"] != "failed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert f"job {job_id} failed: weights_checksum_mismatch: /w/x.safetensors has sha256 ab" in logged


def test_a_client_error_is_not_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_in(tmp_path)
    refused = FakeAnalyzer(settings, error=UnsupportedMediaType("not media"))
    with caplog.at_level(logging.WARNING), fake_service(settings, refused) as service:
        assert service.client.post("/v1/analyze", content=small_photo()).status_code == 415
    assert not [r for r in caplog.records if r.name.startswith("serving")]
