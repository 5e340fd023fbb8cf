"""The store on both backends (SQLite in the data folder, then PostgreSQL): durability across
reopen, recovery, media lifetime, purge, result cache, migrations (a pre-migration SQLite store is
adopted; the migrated schema equals the tables the code uses), two processes on one database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from detector.settings import Settings
from serving.jobs.store import JobStore, open_store
from serving.store import schema
from serving.store.engine import current_revision, normalise_url

pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> JobStore:
    return open_store(settings)


def _job(store: JobStore, owner: str = "key:a", media: bytes = b"video bytes") -> str:
    return store.create_job(
        owner=owner, sha256="ab" * 32, options={"frames": 4}, name="v.mp4", media=media
    ).id


def test_the_backend_is_the_one_asked_for(store: JobStore, database_url: str | None) -> None:
    assert store.dialect == ("sqlite" if database_url is None else "postgresql")
    assert current_revision(store.engine) == "0005"
    if database_url is None:
        assert store.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
    ids = {_job(store) for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) >= 20 for i in ids)  # 128 random bits, url-safe


def test_the_migrated_schema_is_the_one_the_code_uses(store: JobStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diff == []


def test_accepted_job_survives_reopen_with_its_media(settings: Settings) -> None:
    first = open_store(settings)
    job_id = _job(first, media=b"\x00\x01payload")
    first.close()
    again = open_store(settings)
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
    assert store.get("job_' OR 1=1 --") is None  # malformed ids never reach SQL


def test_media_is_deleted_when_the_analysis_ends(store: JobStore) -> None:
    report = {"media": {"kind": "video"}, "score": {"verdict": "manipulated", "manipulated": 0.95}}
    for status, kwargs in (("succeeded", {"report": report}), ("failed", {"error": ("corrupt_media", "x")})):
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
        if status == "succeeded":  # what the review queue sorts on is read from the report
            assert (done.kind, done.verdict, done.score) == ("video", "manipulated", 0.95)
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


def test_only_the_latest_claim_records_progress_and_an_outcome(store: JobStore) -> None:
    """A sweep took the job for dead (its worker could not reach the store) and another worker
    claimed it: the first worker's progress and outcome are dropped, and its media stays for the
    other worker to read."""
    job_id = _job(store)
    first = store.claim(job_id)
    assert first is not None
    assert store.requeue(job_id)
    second = store.claim(job_id)
    assert second is not None
    assert (first.claims, second.claims) == (1, 2)
    assert store.set_progress(job_id, 0.5, {"stage": "faces"}, claim=first.claims) is False
    before = store.get(job_id)
    assert before is not None
    store.heartbeat({job_id: first.claims})
    after = store.get(job_id)
    assert after is not None
    assert after.heartbeat_at == before.heartbeat_at, "the old claim kept the new one looking alive"
    store.heartbeat({job_id: second.claims})
    renewed = store.get(job_id)
    assert renewed is not None
    assert (renewed.heartbeat_at or 0) > (before.heartbeat_at or 0)
    assert not store.requeue(job_id, claim=first.claims), "the first worker put the other's job back"
    assert store.read_media(second) is not None
    assert store.finish(job_id, "succeeded", 60.0, report={"by": "first"}, claim=first.claims) is None
    assert store.read_media(second) is not None, "the other worker's media was deleted"
    running = store.get(job_id)
    assert running is not None
    assert (running.status, running.progress, running.report) == ("running", 0.0, None)
    done = store.finish(job_id, "succeeded", 60.0, report={"by": "second"}, claim=second.claims)
    assert done is not None
    assert (done.status, done.report, done.claims) == ("succeeded", {"by": "second"}, 2)
    assert store.read_media(second) is None


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


def test_on_a_shared_database_recovery_leaves_jobs_with_a_live_heartbeat(store: JobStore) -> None:
    live, dead = _job(store), _job(store)
    claimed = store.claim(live)
    assert claimed is not None
    store.claim(dead)
    store.heartbeat({live: claimed.claims})
    with store.transaction() as db:  # the worker of `dead` stopped beating two minutes ago
        db.execute(
            schema.jobs.update().where(schema.jobs.c.id == dead).values(heartbeat_at=time.time() - 120)
        )
    requeued, failed = store.recover(ttl_s=60.0, stale_before=time.time() - 90)
    assert (requeued, failed) == ([dead], [])
    assert [j.status for j in (store.get(live), store.get(dead)) if j is not None] == ["running", "queued"]


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
    assert not store.query(select(schema.jobs.c.id).where(schema.jobs.c.id == old))
    assert store.get(fresh) is not None
    assert store.get(waiting) is not None  # queued jobs never expire
    assert store.cached_report("cd" * 32, "k1", "key:a") == {"n": 2}
    assert store.cached_report("cd" * 32, "k1", "key:a", max_age_s=3600) == {"n": 2}
    with store.transaction() as db:  # cached 2 h ago, not purged yet (the purge runs every 10 min)
        db.execute(schema.results.update().values(created_at=time.time() - 7200))
    assert store.cached_report("cd" * 32, "k1", "key:a", max_age_s=3600) is None, "served after its TTL"
    store.purge(now=time.time() + 7200, cache_ttl_s=3600)
    assert store.cached_report("cd" * 32, "k1", "key:a") is None


def test_purge_keeps_a_job_whose_expiry_was_lifted_after_it_was_selected(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The purge selects expired jobs, then deletes them; an appeal opened in between (which lifts the
    job's expiry) used to be left pending on a deleted job."""
    appealed, plain = _job(store), _job(store)
    for job_id in (appealed, plain):
        store.claim(job_id)
        store.finish(job_id, "succeeded", 10.0, report={"n": 1})
    select_expired = store.query

    def appeal_meanwhile(statement: object) -> list[object]:
        rows = select_expired(statement)  # type: ignore[arg-type]
        store.keep_until(appealed, None)  # what opening an appeal does to its job
        return rows

    monkeypatch.setattr(store, "query", appeal_meanwhile)
    assert store.purge(now=time.time() + 60) == 1
    monkeypatch.undo()
    assert store.get(appealed) is not None
    assert not store.query(select(schema.jobs.c.id).where(schema.jobs.c.id == plain))


def test_cache_is_keyed_by_content_result_key_and_owner(store: JobStore) -> None:
    store.cache_report("ef" * 32, "key-a", "key:a", {"score": 0.2})
    store.cache_report("ef" * 32, "key-a", "key:a", {"score": 0.3})  # replaced, not duplicated
    assert store.cached_report("ef" * 32, "key-a", "key:a") == {"score": 0.3}
    assert store.cached_report("ef" * 32, "key-b", "key:a") is None
    assert store.cached_report("00" * 32, "key-a", "key:a") is None
    assert store.cached_report("ef" * 32, "key-a", "key:b") is None, "never another owner's report"


def test_an_answered_image_is_kept_and_cached_in_one_write(store: JobStore) -> None:
    """The job ``create_job`` returns is the one ``get`` reads back, and its report is the cached one."""
    report = {"score": {"manipulated": 0.2, "verdict": "authentic"}, "media": {"kind": "image"}}
    store.cache_report("ef" * 32, "key-a", "key:a", {"score": 0.9})  # an older report, replaced
    job = store.create_job(
        owner="key:a",
        sha256="ef" * 32,
        options={"frames": None},
        report=report,
        ttl_s=60.0,
        cache_key="key-a",
    )
    assert job == store.get(job.id)
    assert (job.status, job.verdict, job.kind, job.options) == (
        "succeeded",
        "authentic",
        "image",
        {"frames": None},
    )
    assert store.cached_report("ef" * 32, "key-a", "key:a") == report
    assert store.cached_report("ef" * 32, "key-a", "key:b") is None
    plain = store.create_job(owner="key:b", sha256="ef" * 32, options={}, report=report)
    assert store.cached_report("ef" * 32, "key-a", "key:b") is None, "no cache_key, nothing cached"
    assert plain == store.get(plain.id)
    with pytest.raises(ValueError, match="needs the report"):
        store.create_job(owner="key:b", sha256="ef" * 32, options={}, media=b"v", cache_key="key-a")


def test_a_second_process_on_the_same_database_sees_the_jobs(store: JobStore, settings: Settings) -> None:
    job_id = _job(store)
    code = (
        "import sys; from pathlib import Path; from detector.settings import Settings; "
        "from serving.jobs.store import open_store; "
        "s = open_store(Settings(data_dir=Path(sys.argv[1]))); j = s.get(sys.argv[2]); "
        "print(j.status, s.claim(j.id).status)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(settings.data_dir), job_id],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["queued", "running"]
    job = store.get(job_id)
    assert job is not None
    assert job.status == "running"  # claimed by the other process: this one will not run it
    assert store.claim(job_id) is None


LEGACY = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0,
    partial TEXT, report TEXT, error_code TEXT, error_message TEXT, media_path TEXT, name TEXT,
    sha256 TEXT NOT NULL, options TEXT NOT NULL, callback_url TEXT, callback_state TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, expires_at REAL
);
CREATE INDEX jobs_status ON jobs (status, created_at);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY, name TEXT, hash TEXT NOT NULL, webhook_secret TEXT NOT NULL,
    created_at REAL NOT NULL, revoked_at REAL
);
CREATE TABLE sessions (hash TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE cache (sha256 TEXT PRIMARY KEY, report TEXT NOT NULL);
INSERT INTO api_keys VALUES ('0123abcd', 'old', 'h', 'whsec_x', 1.0, NULL);
INSERT INTO jobs (id, owner, status, sha256, options, created_at, updated_at)
    VALUES ('job_aaaaaaaaaaaaaaaaaaaaaa', 'key:0123abcd', 'queued', 'ab', '{}', 1.0, 1.0);
"""


def test_a_store_made_before_migrations_is_adopted(tmp_path: Path, database_url: str | None) -> None:
    if database_url is not None:
        pytest.skip("stores made before migrations were SQLite files")
    path = tmp_path / "trueframe.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(LEGACY)
    store = JobStore(path)
    assert current_revision(store.engine) == "0005"
    keys = store.query(select(schema.api_keys.c.id, schema.api_keys.c.role))
    assert [(k["id"], k["role"]) for k in keys] == [("0123abcd", "submitter")]
    assert store.queued_ids() == ["job_aaaaaaaaaaaaaaaaaaaaaa"]
    assert "cache" not in {
        r["name"] for r in store.query("SELECT name FROM sqlite_master WHERE type='table'")
    }


def test_database_urls_are_normalised_to_psycopg() -> None:
    assert normalise_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalise_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert normalise_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    from detector.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        normalise_url("mysql://h/db")


def test_a_finished_jobs_report_is_cached_with_its_outcome_and_not_after_a_delete(store: JobStore) -> None:
    """The runner cached a video's report, then recorded the outcome: a job deleted or erased while
    it ran left its report (upload name included) in the cache, served to the next upload."""
    kept, deleted = _job(store), _job(store, owner="key:b")
    for job_id in (kept, deleted):
        store.claim(job_id)
    assert store.delete(deleted, "key:b")
    assert store.finish(deleted, "succeeded", 60.0, report={"name": "gone.mp4"}, cache_key="k") is None
    assert store.cached_report("ab" * 32, "k", "key:b") is None
    done = store.finish(kept, "succeeded", 60.0, report={"name": "v.mp4"}, cache_key="k")
    assert done is not None
    assert store.cached_report("ab" * 32, "k", "key:a") == {"name": "v.mp4"}
    with pytest.raises(ValueError, match="needs the report"):
        store.finish(kept, "failed", 60.0, error=("x", "y"), cache_key="k")


def test_deleting_a_job_forgets_its_owners_cached_reports_of_the_same_bytes(store: JobStore) -> None:
    job_id = _job(store)
    for key, owner in (("k1", "key:a"), ("k2", "key:a"), ("k1", "key:b")):
        store.cache_report("ab" * 32, key, owner, {"name": f"{owner}.mp4"})
    store.cache_report("cd" * 32, "k1", "key:a", {"name": "other bytes"})
    assert not store.delete(job_id, "key:b")  # another owner's delete changes nothing
    assert store.cached_report("ab" * 32, "k1", "key:a") is not None
    assert store.delete(job_id, "key:a")
    assert store.cached_report("ab" * 32, "k1", "key:a") is None
    assert store.cached_report("ab" * 32, "k2", "key:a") is None
    assert store.cached_report("ab" * 32, "k1", "key:b") == {"name": "key:b.mp4"}, "never another owner's"
    assert store.cached_report("cd" * 32, "k1", "key:a") == {"name": "other bytes"}


def test_migration_0004_removes_hash_list_items_whose_decision_time_is_not_a_time(
    store: JobStore, settings: Settings
) -> None:
    """Imports stored 1e20, inf or -1e15 until 2026-12-03, and every analysis matching such an item
    answered 500; the rows cannot be repaired (their real time is unknown), so they go."""
    from alembic import command
    from alembic.config import Config

    from serving.store.engine import MIGRATIONS

    with store.engine.connect() as conn, conn.begin():
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    rows = {"ok": 1714557600.0, "far": 1e20, "inf": float("inf"), "before": -1e15}
    with store.transaction() as db:
        db.execute(schema.hash_lists.insert().values(name="t", source="import", created_at=1.0))
        for item, when in rows.items():
            values = {"list_name": "t", "item": item, "kind": "image", "verdict": "manipulated"}
            values |= {"reviewed_at": when, "hashes": "ab" * 32, "added_at": 1.0}
            db.execute(schema.known_media.insert().values(**values))
    store.close()
    again = open_store(settings)  # a service starting on the old store migrates it
    try:
        assert current_revision(again.engine) == "0005"
        kept = again.query(select(schema.known_media.c.item))
        assert [row["item"] for row in kept] == ["ok"]
    finally:
        again.close()


def test_a_store_made_by_a_newer_release_is_a_typed_error(store: JobStore, settings: Settings) -> None:
    """Before, opening it (``trueframe analyze``, ``serve``, ``scan``) was alembic's traceback."""
    from detector.errors import StoreUnavailable

    with store.transaction() as db:
        db.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    store.close()
    with pytest.raises(StoreUnavailable, match="schema this trueframe does not know") as raised:
        open_store(settings)
    assert "9999" in str(raised.value)
