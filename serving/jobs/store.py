"""The job store: SQLite in WAL mode under the data folder, plus uploaded media files beside it.

Jobs are written before ``202`` is answered, so an accepted job is never lost: on start,
:meth:`JobStore.recover` puts jobs that were running back in the queue (their media is still on
disk) or marks them failed with the reason. Media is deleted when its analysis ends, whatever the
outcome; finished jobs and cached reports expire after the configured time (:meth:`JobStore.purge`).
One connection guarded by a lock: every statement is short, so callers may use it from the event loop.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from detector.settings import Settings

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
STORE_FILE = "trueframe.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0,
    partial TEXT, report TEXT, error_code TEXT, error_message TEXT, media_path TEXT, name TEXT,
    sha256 TEXT NOT NULL, options TEXT NOT NULL, callback_url TEXT, callback_state TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, expires_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT, hash TEXT NOT NULL, webhook_secret TEXT NOT NULL,
    created_at REAL NOT NULL, revoked_at REAL, role TEXT NOT NULL DEFAULT 'submitter'
);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL
);
DROP TABLE IF EXISTS cache;
CREATE TABLE IF NOT EXISTS results (
    sha256 TEXT NOT NULL, result_key TEXT NOT NULL, owner TEXT NOT NULL, report TEXT NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (sha256, result_key, owner)
);
"""


def store_path(settings: Settings) -> Path:
    """Where the service and ``trueframe keys`` find the store for these settings."""
    return settings.data_dir.expanduser() / STORE_FILE


JOB_ID = re.compile(r"job_[A-Za-z0-9_-]{22}")
"""The shape of every job id; anything else is refused before it reaches SQL or the filesystem."""


def new_job_id() -> str:
    """An unguessable job id (128 random bits)."""
    return "job_" + secrets.token_urlsafe(16)


def valid_job_id(job_id: str) -> bool:
    """Whether ``job_id`` has the shape of an id this store makes."""
    return JOB_ID.fullmatch(job_id) is not None


@dataclass(frozen=True)
class Job:
    """One row of ``jobs``; ``report``/``partial`` are decoded JSON."""

    id: str
    owner: str
    status: JobStatus
    progress: float
    partial: dict[str, Any] | None
    report: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    media_path: str | None
    name: str | None
    sha256: str
    options: dict[str, Any]
    callback_url: str | None
    callback_state: str | None
    created_at: float
    updated_at: float
    expires_at: float | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class JobStore:
    """Jobs, API keys, web sessions and the result cache in one SQLite file (WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.media_dir = self.path.parent / "media"
        self.media_dir.mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(api_keys)")}
        if "role" not in columns:  # stores made before roles: every existing key is a submitter
            self._db.execute("ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'submitter'")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Rows of one read statement."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- jobs ---------------------------------------------------------------------------------

    def write_media(self, job_id: str, data: bytes) -> Path:
        """Keep an upload on disk until its analysis ends (written before the job row)."""
        path = self.media_dir / f"{job_id}.bin"
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path

    def create_job(
        self,
        *,
        owner: str,
        sha256: str,
        options: dict[str, Any],
        name: str | None = None,
        media: bytes | None = None,
        callback_url: str | None = None,
        report: dict[str, Any] | None = None,
        ttl_s: float | None = None,
    ) -> Job:
        """Insert a queued job (media saved first), or an already succeeded one when ``report`` is given."""
        job_id = new_job_id()
        now = time.time()
        media_path = None if media is None or report is not None else str(self.write_media(job_id, media))
        status = "succeeded" if report is not None else "queued"
        expires = now + ttl_s if report is not None and ttl_s is not None else None
        with self.transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, owner, status, progress, report, media_path, name, sha256, options,"
                " callback_url, callback_state, created_at, updated_at, expires_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    job_id, owner, status, 1.0 if report is not None else 0.0,
                    None if report is None else json.dumps(report), media_path, name, sha256,
                    json.dumps(options), callback_url, "pending" if callback_url else None, now, now, expires,
                ),
            )  # fmt: skip
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str, owner: str | None = None) -> Job | None:
        """The job, or None when unknown, expired, malformed, or (with ``owner``) made by someone else."""
        if not valid_job_id(job_id):
            return None
        rows = self.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows or (owner is not None and rows[0]["owner"] != owner):
            return None
        if rows[0]["expires_at"] is not None and rows[0]["expires_at"] < time.time():
            return None
        return _job(rows[0])

    def claim(self, job_id: str) -> Job | None:
        """Mark a queued job running and return it; None when it was cancelled or taken meanwhile."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE jobs SET status='running', updated_at=? WHERE id=? AND status='queued'",
                (time.time(), job_id),
            )
        return self.get(job_id) if cur.rowcount == 1 else None

    def set_progress(self, job_id: str, fraction: float, partial: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET progress=?, partial=?, updated_at=? WHERE id=? AND status='running'",
                (max(0.0, min(1.0, fraction)), json.dumps(partial), time.time(), job_id),
            )

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        ttl_s: float,
        *,
        report: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
    ) -> Job | None:
        """Record the outcome of a running job and delete its media; None if it was cancelled meanwhile."""
        now = time.time()
        code, message = error if error is not None else (None, None)
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE jobs SET status=?, progress=CASE WHEN ?='succeeded' THEN 1.0 ELSE progress END,"
                " report=?, error_code=?, error_message=?, media_path=NULL, updated_at=?, expires_at=?"
                " WHERE id=? AND status IN ('queued','running')",
                (
                    status, status, None if report is None else json.dumps(report),
                    code, message, now, now + ttl_s, job_id,
                ),
            )  # fmt: skip
        self._delete_media(job_id)
        return self.get(job_id) if cur.rowcount == 1 else None

    def delete(self, job_id: str, owner: str) -> bool:
        """Remove a job of ``owner`` and its media, whatever its state (a running result is discarded).

        Another owner's job (or a malformed id) is left untouched, media included: False.
        """
        if not valid_job_id(job_id):
            return False
        with self.transaction() as db:
            cur = db.execute("DELETE FROM jobs WHERE id=? AND owner=?", (job_id, owner))
        if cur.rowcount != 1:
            return False
        self._delete_media(job_id)
        return True

    def set_callback_state(self, job_id: str, state: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE jobs SET callback_state=? WHERE id=?", (state, job_id))

    def read_media(self, job: Job) -> bytes | None:
        """The job's upload, or None when it is gone."""
        if job.media_path is None:
            return None
        try:
            return Path(job.media_path).read_bytes()
        except FileNotFoundError:
            return None

    def _delete_media(self, job_id: str) -> None:
        for suffix in (".bin", ".part"):
            (self.media_dir / f"{job_id}{suffix}").unlink(missing_ok=True)

    def active_count(self) -> int:
        """Jobs queued or running: what the queue limit counts."""
        return int(self.query("SELECT COUNT(*) FROM jobs WHERE status IN ('queued','running')")[0][0])

    def queued_ids(self) -> list[str]:
        return [r["id"] for r in self.query("SELECT id FROM jobs WHERE status='queued' ORDER BY created_at")]

    def pending_callbacks(self) -> list[Job]:
        """Finished jobs whose webhook was not yet delivered or given up."""
        rows = self.query(
            "SELECT * FROM jobs WHERE callback_state='pending'"
            " AND status IN ('succeeded','failed','cancelled')"
        )
        return [_job(r) for r in rows]

    def recover(self, ttl_s: float) -> tuple[list[str], list[str]]:
        """After a restart: running jobs go back to the queue, or fail when their media is gone.

        Returns (requeued ids, failed ids).
        """
        requeued, failed = [], []
        for row in self.query("SELECT * FROM jobs WHERE status IN ('queued','running')"):
            job = _job(row)
            if job.media_path is not None and Path(job.media_path).is_file():
                if job.status == "running":
                    with self.transaction() as db:
                        db.execute(
                            "UPDATE jobs SET status='queued', progress=0, partial=NULL, updated_at=?"
                            " WHERE id=?",
                            (time.time(), job.id),
                        )
                    requeued.append(job.id)
            else:
                self.finish(
                    job.id, "failed", ttl_s,
                    error=("media_lost", "the uploaded media was gone when the service restarted"),
                )  # fmt: skip
                failed.append(job.id)
        return requeued, failed

    def purge(self, now: float | None = None, cache_ttl_s: float | None = None) -> int:
        """Delete expired finished jobs (and any media left), expired sessions and old cache rows."""
        now = time.time() if now is None else now
        expired = [
            r["id"]
            for r in self.query("SELECT id FROM jobs WHERE expires_at IS NOT NULL AND expires_at < ?", (now,))
        ]
        with self.transaction() as db:
            db.executemany("DELETE FROM jobs WHERE id=?", [(i,) for i in expired])
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            if cache_ttl_s is not None:
                db.execute("DELETE FROM results WHERE created_at < ?", (now - cache_ttl_s,))
        for job_id in expired:
            self._delete_media(job_id)
        return len(expired)

    # -- result cache -------------------------------------------------------------------------

    def cached_report(self, sha256: str, key: str, owner: str) -> dict[str, Any] | None:
        """The report ``owner`` got for these bytes under :func:`serving.jobs.cache.result_key`, if any.

        The cache is per owner: a hit never tells one key that another uploaded the same bytes.
        """
        rows = self.query(
            "SELECT report FROM results WHERE sha256=? AND result_key=? AND owner=?", (sha256, key, owner)
        )
        return json.loads(rows[0]["report"]) if rows else None

    def cache_report(self, sha256: str, key: str, owner: str, report: dict[str, Any]) -> None:
        """Remember ``owner``'s report for these bytes under its result key."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO results (sha256, result_key, owner, report, created_at)"
                " VALUES (?,?,?,?,?)",
                (sha256, key, owner, json.dumps(report), time.time()),
            )


def _job(row: sqlite3.Row) -> Job:
    values = dict(row)
    for field in ("partial", "report", "options"):
        if values[field] is not None:
            values[field] = json.loads(values[field])
    return Job(**values)
