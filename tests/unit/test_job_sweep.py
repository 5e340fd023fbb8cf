"""Running jobs whose worker went away are resumed while the service runs, on both backends.

Regression of a user walkthrough on PostgreSQL: a job ``running`` when the service stopped was never
resumed when the service came back within 90 s. Start-up recovery on a shared database requeues
only running jobs whose heartbeat is older than ``serve.job_stale_s`` (another live replica may be
running the others), and it ran only at start-up. Now every runner also sweeps the store.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from serving.jobs.store import JobStore, open_store
from tests.support.hold import settings_in, small_clip
from tests.support.servicekit import fake_service, poll_job

pytestmark = pytest.mark.usefixtures("database_url")


def _running_job(store: JobStore, media: bytes) -> str:
    """A job claimed by a worker that then went away (its heartbeat is fresh now)."""
    job_id = store.create_job(owner="anonymous", sha256="ab" * 32, options={}, name="v.mp4", media=media).id
    assert store.claim(job_id) is not None
    return job_id


def test_recover_leaves_the_callers_own_jobs(tmp_path: Path) -> None:
    store = open_store(settings_in(tmp_path))
    try:
        mine, theirs = _running_job(store, b"a"), _running_job(store, b"b")
        requeued, failed = store.recover(3600.0, stale_before=time.time() + 1.0, keep={mine})
        assert (requeued, failed) == ([theirs], [])
        job = store.get(mine)
        assert job is not None
        assert job.status == "running"
    finally:
        store.close()


def test_a_job_left_running_by_a_quick_restart_is_resumed(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, job_stale_s=1.5)
    previous = open_store(settings)  # the service that stopped while the job ran
    try:
        job_id = _running_job(previous, small_clip(tmp_path))
    finally:
        previous.close()
    with fake_service(settings) as service:  # restarted at once: the job's heartbeat is fresh
        done = poll_job(service.client, job_id, timeout=20)
        assert done["status"] == "succeeded", done


def test_the_heartbeat_stays_well_within_the_stale_time(tmp_path: Path) -> None:
    from serving.jobs.runner import JobRunner

    runner = JobRunner(settings_in(tmp_path, job_stale_s=6.0), None, None, None)  # type: ignore[arg-type]
    assert runner.heartbeat_s == 2.0
    assert JobRunner(settings_in(tmp_path), None, None, None).heartbeat_s == 15.0  # type: ignore[arg-type]
