"""The SQLite job store: durability across reopen, recovery, media lifetime, purge, result cache."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from serving.jobs.store import JobStore


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "data" / "trueframe.sqlite3")


def _job(store: JobStore, owner: str = "key:a", media: bytes = b"video bytes") -> str:
    return store.create_job(
        owner=owner, sha256="ab" * 32, options={"frames": 4}, name="v.mp4", media=media
    ).id


def test_wal_mode_and_unguessable_ids(store: JobStore) -> None:
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    ids = {_job(store) for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) >= 20 for i in ids)  # 128 random bits, url-safe


def test_accepted_job_survives_reopen_with_its_media(tmp_path: Path) -> None:
    path = tmp_path / "trueframe.sqlite3"
    first = JobStore(path)
    job_id = _job(first, media=b"\x00\x01payload")
    first.close()
    again = JobStore(path)
    job = again.get(job_id)
    assert job is not None
    assert job.status == "queued"
    assert again.read_media(job) == b"\x00\x01payload"
    assert again.queued_ids() == [job_id]


def test_jobs_are_visible_only_to_their_owner(store: JobStore) -> None:
    job_id = _job(store, owner="key:a")
    assert store.get(job_id, owner="key:a") is not None
    assert store.get(job_id, owner="key:b") is None
    assert not store.delete(job_id, owner="key:b")
    assert store.get(job_id) is not None


def test_media_is_deleted_when_the_analysis_ends(store: JobStore) -> None:
    for status, kwargs in (
        ("succeeded", {"report": {"ok": 1}}),
        ("failed", {"error": ("corrupt_media", "x")}),
    ):
        job_id = _job(store)
        media = store.media_dir / f"{job_id}.bin"
        assert media.is_file()
        assert store.claim(job_id) is not None
        done = store.finish(job_id, status, 60.0, **kwargs)  # type: ignore[arg-type]
        assert done is not None
        assert done.status == status
        assert not media.exists()
        assert done.media_path is None
        assert done.expires_at is not None
    assert store.active_count() == 0


def test_delete_removes_the_job_and_its_media(store: JobStore) -> None:
    job_id = _job(store)
    assert store.delete(job_id, owner="key:a")
    assert store.get(job_id) is None
    assert list(store.media_dir.iterdir()) == []


def test_a_cancelled_job_is_not_claimed_nor_finished(store: JobStore) -> None:
    job_id = _job(store)
    store.delete(job_id, owner="key:a")
    assert store.claim(job_id) is None
    assert store.finish(job_id, "succeeded", 60.0, report={}) is None


def test_recover_requeues_running_jobs_and_fails_those_without_media(store: JobStore) -> None:
    keep, lost = _job(store), _job(store)
    assert store.claim(keep) is not None
    assert store.claim(lost) is not None
    store.set_progress(keep, 0.5, {"stage": "faces"})
    (store.media_dir / f"{lost}.bin").unlink()
    requeued, failed = store.recover(ttl_s=60.0)
    assert (requeued, failed) == ([keep], [lost])
    kept, gone = store.get(keep), store.get(lost)
    assert kept is not None
    assert gone is not None
    assert (kept.status, kept.progress, kept.partial) == ("queued", 0.0, None)
    assert gone.status == "failed"
    assert gone.error_code == "media_lost"
    assert gone.error_message


def test_an_expired_job_is_gone_even_before_the_purge(store: JobStore) -> None:
    job_id = _job(store)
    store.claim(job_id)
    store.finish(job_id, "succeeded", -1.0, report={"n": 1})
    assert store.get(job_id) is None


def test_purge_deletes_expired_reports_only(store: JobStore) -> None:
    old, fresh, waiting = _job(store), _job(store), _job(store)
    for job_id, ttl in ((old, 10.0), (fresh, 3600.0)):
        store.claim(job_id)
        store.finish(job_id, "succeeded", ttl, report={"n": 1})
    store.cache_report("cd" * 32, "k1", "key:a", {"n": 2})
    purged = store.purge(now=time.time() + 60, cache_ttl_s=3600)
    assert purged == 1
    assert not store.query("SELECT 1 FROM jobs WHERE id=?", (old,))
    assert store.get(fresh) is not None
    assert store.get(waiting) is not None  # queued jobs never expire
    assert store.cached_report("cd" * 32, "k1", "key:a") == {"n": 2}
    store.purge(now=time.time() + 7200, cache_ttl_s=3600)
    assert store.cached_report("cd" * 32, "k1", "key:a") is None


def test_cache_is_keyed_by_content_result_key_and_owner(store: JobStore) -> None:
    store.cache_report("ef" * 32, "key-a", "key:a", {"score": 0.2})
    assert store.cached_report("ef" * 32, "key-a", "key:a") == {"score": 0.2}
    assert store.cached_report("ef" * 32, "key-b", "key:a") is None
    assert store.cached_report("00" * 32, "key-a", "key:a") is None
    assert store.cached_report("ef" * 32, "key-a", "key:b") is None, "never another owner's report"
