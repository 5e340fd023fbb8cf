"""Running jobs whose worker went away are resumed while the service runs, on both backends.

Regression of a user walkthrough on PostgreSQL: a job ``running`` when the service stopped was never
resumed when the service came back within 90 s. Start-up recovery on a shared database requeues
only running jobs whose heartbeat is older than ``serve.job_stale_s`` (another live replica may be
running the others), and it ran only at start-up. Now every runner also sweeps the store.
"""

from __future__ import annotations

import math
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


def test_a_heartbeat_landing_meanwhile_keeps_its_job(tmp_path: Path) -> None:
    """The requeue checks the staleness again: a heartbeat between the sweep's read and its update
    means a live worker has the job."""
    store = open_store(settings_in(tmp_path))
    try:
        job_id = _running_job(store, b"a")
        assert not store.requeue(job_id, stale_before=time.time() - 60.0)  # its heartbeat is fresh
        assert store.requeue(job_id, stale_before=time.time() + 1.0)
        job = store.get(job_id)
        assert job is not None
        assert job.status == "queued"
    finally:
        store.close()


def test_the_sweep_never_fails_a_job_whose_media_it_cannot_see(tmp_path: Path) -> None:
    """Media may live on another replica's disk: only start-up, on its own files, may call it lost."""
    store = open_store(settings_in(tmp_path))
    try:
        job_id = _running_job(store, b"a")
        job = store.get(job_id)
        assert job is not None
        assert job.media_path is not None
        Path(job.media_path).unlink()
        assert store.recover(3600.0, stale_before=time.time() + 1.0, fail_lost=False) == ([], [])
        again = store.get(job_id)
        assert again is not None
        assert again.status == "running"
    finally:
        store.close()


def test_a_queued_job_no_worker_holds_is_taken_up_by_the_sweep(tmp_path: Path) -> None:
    """A job put back in the queue in the store but in no runner's memory (a sweep cut short by an
    outage, a replica gone) used to wait for the next restart."""
    settings = settings_in(tmp_path, job_stale_s=1.5)
    with fake_service(settings) as service:
        store = service.store
        job_id = store.create_job(
            owner="anonymous", sha256="cd" * 32, options={}, name="v.mp4", media=small_clip(tmp_path)
        ).id  # written to the store only: no runner was told
        done = poll_job(service.client, job_id, timeout=20)
        assert done["status"] == "succeeded", done


def test_the_sweep_holds_off_after_the_store_failed(tmp_path: Path) -> None:
    """Heartbeats are missed during an outage: right after one, a stale-looking job may be alive,
    so the sweep waits one ``job_stale_s`` before it takes such a job over."""
    settings = settings_in(tmp_path, job_stale_s=0.6)
    with fake_service(settings) as service:
        runner = service.client.app.state.trueframe.runner  # type: ignore[attr-defined]
        runner._store_failed_at = time.monotonic() + 3600.0  # an outage that has just ended, for good
        job_id = _running_job(service.store, small_clip(tmp_path))  # "another worker's", gone stale
        time.sleep(2.0)  # ten sweep intervals: none may take it over
        held = service.store.get(job_id)
        assert held is not None
        assert held.status == "running"
        runner._store_failed_at = -math.inf  # the hold-off has passed
        done = poll_job(service.client, job_id, timeout=20)
        assert done["status"] == "succeeded", done


def test_the_sweep_leaves_a_queued_job_whose_media_is_on_another_node(tmp_path: Path) -> None:
    """With node-local data folders a queued job of another node must not be taken up here: its
    media is not on this disk, and it would fail as media_lost."""
    settings = settings_in(tmp_path, job_stale_s=0.6)
    with fake_service(settings) as service:
        store = service.store
        job = store.create_job(owner="anonymous", sha256="ef" * 32, options={}, name="v.mp4", media=b"x")
        assert job.media_path is not None
        Path(job.media_path).unlink()  # "another node's disk"
        time.sleep(1.5)  # several sweeps
        again = store.get(job.id)
        assert again is not None
        assert again.status == "queued"
        assert store.queued_ids(local_media=True) == []
        assert store.queued_ids() == [job.id]
