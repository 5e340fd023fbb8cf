"""The job store: jobs, keys, sessions and the result cache in one database, uploads as files.

The database is SQLite in WAL mode under the data folder (the embedded default) or PostgreSQL when
``TRUEFRAME_DATABASE_URL`` names one (:mod:`serving.store.engine`); tables are SQLAlchemy Core
(:mod:`serving.store.schema`), created and upgraded by the shipped Alembic migrations at open.
Uploaded media stays a file under ``<data_dir>/media`` until its analysis ends (several nodes on one
database need that folder on shared storage).

Jobs are written before ``202`` is answered, so an accepted job is never lost: on start,
:meth:`JobStore.recover` puts jobs that were running back in the queue (their media is still on
disk) or marks them failed with the reason. Media is deleted when its analysis ends, whatever the
outcome; finished jobs and cached reports expire after the configured time (:meth:`JobStore.purge`).
Every call is blocking: the service calls the store off the event loop.

A database that cannot be reached (PostgreSQL down or restarting, a SQLite file locked for too long)
makes every call, opening included, raise :class:`~detector.errors.StoreUnavailable` (503
``store_unavailable``) instead of SQLAlchemy's exception; other database errors (bugs) pass unchanged.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Executable, RowMapping, delete, func, insert, select, text, update
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from detector.errors import StoreUnavailable
from detector.settings import Settings
from serving.jobs.records import FINISHED, JOB_ID, Job, JobStatus, new_job_id, summary, valid_job_id
from serving.store import schema as t
from serving.store.engine import (
    IMMEDIATE,
    STORE_FILE,
    create_store_engine,
    is_connection_error,
    migrate,
    sqlite_url,
    unavailable,
)

ACTIVE = ("queued", "running")

__all__ = [
    "FINISHED", "JOB_ID", "STORE_FILE", "Job", "JobStatus", "JobStore", "check_store", "new_job_id",
    "open_store", "store_path", "valid_job_id",
]  # fmt: skip
CONNECTION_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def store_path(settings: Settings) -> Path:
    """Where the embedded SQLite store of these settings lives (media sits beside it)."""
    return settings.data_dir.expanduser() / STORE_FILE


def open_store(settings: Settings) -> JobStore:
    """The store these settings name: ``database_url`` when set, else SQLite in the data folder."""
    media = settings.data_dir.expanduser() / "media"
    if settings.database_url:
        return JobStore(settings.database_url, media_dir=media)
    return JobStore(store_path(settings), media_dir=media)


def check_store(settings: Settings) -> None:
    """Connect to the store these settings name and run ``SELECT 1`` (no migration, nothing written
    beyond what SQLite's open creates); :class:`~detector.errors.StoreUnavailable` when unreachable.

    ``trueframe serve`` calls it before starting Ray, so a database that is down is reported at once.
    """
    if settings.database_url:
        url = settings.database_url
    else:
        path = store_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        url = sqlite_url(path)
    engine = create_store_engine(url)
    try:
        with _reachable(url), engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()


@contextlib.contextmanager
def _reachable(url: str) -> Iterator[None]:
    """Re-raise connection-level database failures as :class:`~detector.errors.StoreUnavailable`."""
    try:
        yield
    except CONNECTION_ERRORS as exc:
        if not is_connection_error(exc):
            raise
        raise unavailable(url, exc) from exc


def _positional(sql: str, params: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``?`` placeholders as named binds (plain SQL that both SQLite and PostgreSQL read)."""
    names = iter(range(len(params)))
    return re.sub(r"\?", lambda _: f":p{next(names)}", sql), {f"p{i}": v for i, v in enumerate(params)}


class JobStore:
    """Jobs, API keys, web sessions, the result cache and the trust-and-safety tables.

    ``target`` is the SQLite file (a :class:`~pathlib.Path`; media goes beside it unless
    ``media_dir`` says otherwise) or a database URL (then ``media_dir`` is required).
    """

    def __init__(self, target: Path | str, media_dir: Path | None = None) -> None:
        if isinstance(target, Path):
            self.path: Path | None = target.expanduser()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            url = sqlite_url(self.path)
            media_dir = media_dir or self.path.parent / "media"
        else:
            if media_dir is None:
                raise ValueError("a store opened by URL needs media_dir")
            self.path, url = None, target
        self.url = url
        self.media_dir = media_dir.expanduser()
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.engine = create_store_engine(url)
        try:
            with _reachable(url):
                migrate(self.engine)
        except StoreUnavailable:
            self.engine.dispose()
            raise

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def shared(self) -> bool:
        """Whether other processes on other machines may use this database too (not SQLite)."""
        return self.dialect != "sqlite"

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one write transaction (SQLite: ``BEGIN IMMEDIATE``), rolled back on error."""
        with _reachable(self.url), self.engine.connect() as conn:
            conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                yield conn

    def query(self, stmt: Executable | str, params: Sequence[Any] = ()) -> list[RowMapping]:
        """Rows of one read statement (a SQLAlchemy statement, or plain SQL with ``?`` placeholders)."""
        if isinstance(stmt, str):
            sql, binds = _positional(stmt, params)
            stmt, params = text(sql).bindparams(**binds), ()
        with _reachable(self.url), self.engine.connect() as conn:
            return list(conn.execute(stmt).mappings())

    def scalar(self, stmt: Executable) -> Any:
        """The first column of the first row of one read statement."""
        with _reachable(self.url), self.engine.connect() as conn:
            return conn.execute(stmt).scalar()

    def ping(self) -> None:
        """``SELECT 1`` on a pooled connection: returns when the database answers, else
        :class:`~detector.errors.StoreUnavailable` (readiness checks call it)."""
        with _reachable(self.url), self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

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
        cache_key: str | None = None,
        committing: contextlib.AbstractContextManager[object] | None = None,
    ) -> Job:
        """Insert a queued job (media saved first), or an already succeeded one when ``report`` is given.

        With ``cache_key`` the report is also cached for ``owner`` (:meth:`cache_report`) in the
        same transaction: an image answered at once costs one write, not two. ``committing`` is
        entered around the transaction alone, not the media write (the HTTP queue's admission
        lock: the row starts counting as its upload's place stops).
        """
        if cache_key is not None and report is None:
            raise ValueError("cache_key caches a report: create_job needs the report too")
        job_id = new_job_id()
        now = time.time()
        media_path = None if media is None or report is not None else str(self.write_media(job_id, media))
        done = report is not None
        row = {
            "id": job_id, "owner": owner, "status": "succeeded" if done else "queued",
            "progress": 1.0 if done else 0.0, "report": None if report is None else json.dumps(report),
            "media_path": media_path, "name": name, "sha256": sha256, "options": json.dumps(options),
            "callback_url": callback_url, "callback_state": "pending" if callback_url else None,
            "created_at": now, "updated_at": now,
            "expires_at": now + ttl_s if done and ttl_s is not None else None, **summary(report),
        }  # fmt: skip
        with committing or contextlib.nullcontext(), self.transaction() as db:
            db.execute(insert(t.jobs).values(**row))
            if cache_key is not None:
                _cache(db, sha256, cache_key, owner, row["report"])
        return _job({**row, "partial": None, "error_code": None, "error_message": None})  # as get() reads it

    def get(self, job_id: str, owner: str | None = None) -> Job | None:
        """The job, or None when unknown, expired, malformed, or (with ``owner``) made by someone else."""
        if not valid_job_id(job_id):
            return None
        rows = self.query(select(t.jobs).where(t.jobs.c.id == job_id))
        if not rows or (owner is not None and rows[0]["owner"] != owner):
            return None
        if rows[0]["expires_at"] is not None and rows[0]["expires_at"] < time.time():
            return None
        return _job(rows[0])

    def claim(self, job_id: str) -> Job | None:
        """Mark a queued job running and return it, its ``claims`` raised by one (the claim its
        progress and outcome name); None when it was cancelled or taken meanwhile."""
        now = time.time()
        with self.transaction() as db:
            row = (
                db.execute(
                    update(t.jobs)
                    .where(t.jobs.c.id == job_id, t.jobs.c.status == "queued")
                    .values(status="running", updated_at=now, heartbeat_at=now, claims=t.jobs.c.claims + 1)
                    .returning(*t.jobs.c)  # the claim as taken: a read after the commit could see a later one
                )
                .mappings()
                .first()
            )
        return None if row is None else _job(row)

    def set_progress(
        self, job_id: str, fraction: float, partial: dict[str, Any], claim: int | None = None
    ) -> bool:
        """Record a running job's progress (with ``claim``: only while that claim holds the job);
        False when the job is no longer there to run: deleted, erased, or claimed again since."""
        now = time.time()
        where = [t.jobs.c.id == job_id, t.jobs.c.status == "running"]
        if claim is not None:
            where.append(t.jobs.c.claims == claim)
        with self.transaction() as db:
            cur = db.execute(
                update(t.jobs)
                .where(*where)
                .values(
                    progress=max(0.0, min(1.0, fraction)),
                    partial=json.dumps(partial),
                    updated_at=now,
                    heartbeat_at=now,
                )
            )
        return bool(cur.rowcount == 1)

    def heartbeat(self, jobs: Mapping[str, int]) -> None:
        """Tell other processes that these running jobs (``{job id: claim}``) are still being worked
        on, each only while that claim holds it (a worker cut off from the store whose job was taken
        over must not keep the new claim looking alive after its worker died)."""
        if not jobs:
            return
        c, now = t.jobs.c, time.time()
        with self.transaction() as db:
            for job_id, claim in jobs.items():
                held = (c.id == job_id, c.claims == claim, c.status == "running")
                db.execute(update(t.jobs).where(*held).values(heartbeat_at=now))

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        ttl_s: float,
        *,
        report: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
        cache_key: str | None = None,
        claim: int | None = None,
    ) -> Job | None:
        """Record the outcome of a running job and delete its media; None if it was cancelled,
        deleted or erased meanwhile, or (with ``claim``) claimed again since: another worker holds it.

        With ``cache_key`` the report is also cached for the job's owner, in the same transaction and
        only when the job is still there: a job deleted or erased while it ran leaves no copy of its
        report behind (the cache row was written before the outcome, whatever became of the job).
        """
        if cache_key is not None and report is None:
            raise ValueError("cache_key caches a report: finish needs the report too")
        now = time.time()
        code, message = error if error is not None else (None, None)
        values: dict[str, Any] = {
            "status": status, "report": None if report is None else json.dumps(report),
            "error_code": code, "error_message": message, "media_path": None,
            "updated_at": now, "expires_at": now + ttl_s, **summary(report),
        }  # fmt: skip
        if status == "succeeded":
            values["progress"] = 1.0
        where = [t.jobs.c.id == job_id, t.jobs.c.status.in_(ACTIVE)]
        if claim is not None:
            where.append(t.jobs.c.claims == claim)
        with self.transaction() as db:
            cur = db.execute(update(t.jobs).where(*where).values(**values))
            if cur.rowcount == 1 and cache_key is not None:
                sha256, owner = db.execute(
                    select(t.jobs.c.sha256, t.jobs.c.owner).where(t.jobs.c.id == job_id)
                ).one()
                _cache(db, sha256, cache_key, owner, values["report"])
            held = (
                cur.rowcount == 0
                and claim is not None
                and db.execute(
                    select(t.jobs.c.id).where(t.jobs.c.id == job_id, t.jobs.c.status.in_(ACTIVE))
                ).first()
                is not None
            )
        if not held:  # media of a job claimed again since is the other worker's to read
            self._delete_media(job_id)
        return self.get(job_id) if cur.rowcount == 1 else None

    def delete(self, job_id: str, owner: str) -> bool:
        """Remove a job of ``owner``, its media, its pending appeals and ``owner``'s cached reports of
        the same bytes, whatever its state (a running result is discarded, and not cached when it
        comes).

        The cached report is a copy of the job's, upload name included: the owner asked for the
        upload to be forgotten, so the next upload of the same bytes is analysed again. An appeal
        still waiting could be taken by a reviewer but never decided (its job gone): it is withdrawn
        with its job; decided ones stay, as the decisions do. Another owner's job (or a malformed
        id) is left untouched, media included: False.
        """
        if not valid_job_id(job_id):
            return False
        c = t.jobs.c
        with self.transaction() as db:
            found = db.execute(select(c.sha256).where(c.id == job_id, c.owner == owner)).first()
            cur = db.execute(delete(t.jobs).where(c.id == job_id, c.owner == owner))
            if found is not None:
                r, a = t.results.c, t.appeals.c
                db.execute(delete(t.results).where(r.sha256 == found.sha256, r.owner == owner))
                db.execute(delete(t.appeals).where(a.job_id == job_id, a.state.in_(t.PENDING_APPEALS)))
        if cur.rowcount != 1:
            return False
        self._delete_media(job_id)
        return True

    def keep_until(self, job_id: str, expires_at: float | None) -> None:
        """Set when a finished job expires (None: kept, e.g. while an appeal on it is open)."""
        with self.transaction() as db:
            db.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(expires_at=expires_at))

    def set_callback_state(self, job_id: str, state: str) -> None:
        with self.transaction() as db:
            db.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(callback_state=state))

    def count_callback_attempt(self, job_id: str, attempt: int) -> None:
        """Record that the job's callback is being POSTed for the ``attempt``-th time."""
        with self.transaction() as db:
            db.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(callback_attempts=attempt))

    def read_media(self, job: Job) -> bytes | None:
        """The job's upload, or None when it is gone."""
        if job.media_path is None:
            return None
        try:
            return Path(job.media_path).read_bytes()
        except FileNotFoundError:
            return None

    def delete_media(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self._delete_media(job_id)

    def _delete_media(self, job_id: str) -> None:
        for suffix in (".bin", ".part"):
            (self.media_dir / f"{job_id}{suffix}").unlink(missing_ok=True)

    def active_count(self) -> int:
        """Jobs queued or running: what the queue limit counts."""
        return int(self.scalar(select(func.count()).select_from(t.jobs).where(t.jobs.c.status.in_(ACTIVE))))

    def queued_ids(self, local_media: bool = False) -> list[str]:
        """Queued jobs, oldest first; with ``local_media`` only those whose upload this node can read
        (with node-local data folders another node's job is not this node's to run: it would fail
        as ``media_lost``)."""
        c = t.jobs.c
        stmt = select(c.id, c.media_path).where(c.status == "queued").order_by(c.created_at)
        rows = self.query(stmt)
        return [
            r["id"]
            for r in rows
            if not local_media or (r["media_path"] is not None and Path(r["media_path"]).is_file())
        ]

    def pending_callbacks(self) -> list[Job]:
        """Finished jobs whose webhook was not yet delivered or given up."""
        rows = self.query(
            select(t.jobs).where(t.jobs.c.callback_state == "pending", t.jobs.c.status.in_(FINISHED))
        )
        return [_job(r) for r in rows]

    def recover(
        self,
        ttl_s: float,
        stale_before: float | None = None,
        keep: Collection[str] = (),
        fail_lost: bool = True,
    ) -> tuple[list[str], list[str]]:
        """After a restart: running jobs go back to the queue, or fail when their media is gone.

        With ``stale_before`` (a shared database, where other replicas run jobs too, and the sweep
        of a running service) only running jobs whose heartbeat is older than that are touched, and
        never those in ``keep`` (the caller's own); the staleness is checked again in the update, so
        a heartbeat landing meanwhile keeps its job. ``fail_lost=False`` (the sweep) leaves a job
        whose media this node does not see alone: another replica may hold it. Returns (requeued
        ids, failed ids).
        """
        requeued, failed = [], []
        for row in self.query(select(t.jobs).where(t.jobs.c.status.in_(ACTIVE))):
            job = _job(row)
            if job.id in keep:
                continue
            alive = job.status == "running" and (job.heartbeat_at or job.updated_at) >= (stale_before or 0)
            if stale_before is not None and alive:
                continue  # another live worker has it
            if job.media_path is not None and Path(job.media_path).is_file():
                if job.status == "running" and self.requeue(job.id, stale_before):
                    requeued.append(job.id)
            elif fail_lost and (stale_before is None or job.status == "running"):
                error = ("media_lost", "the uploaded media was gone when the service restarted")
                self.finish(job.id, "failed", ttl_s, error=error)
                failed.append(job.id)
        return requeued, failed

    def requeue(self, job_id: str, stale_before: float | None = None, claim: int | None = None) -> bool:
        """Put a running job back in the queue (with ``stale_before``: only if its heartbeat is still
        older than that; with ``claim``: only while that claim holds it); True when it was."""
        c = t.jobs.c
        where = [c.id == job_id, c.status == "running"]
        if stale_before is not None:
            where.append(func.coalesce(c.heartbeat_at, c.updated_at) < stale_before)
        if claim is not None:
            where.append(c.claims == claim)
        with self.transaction() as db:
            cur = db.execute(
                update(t.jobs)
                .where(*where)
                .values(status="queued", progress=0.0, partial=None, updated_at=time.time())
            )
        return bool(cur.rowcount == 1)

    def purge(self, now: float | None = None, cache_ttl_s: float | None = None) -> int:
        """Delete expired finished jobs (and any media left), expired sessions and old cache rows."""
        now = time.time() if now is None else now
        expired = [
            r["id"]
            for r in self.query(
                select(t.jobs.c.id).where(t.jobs.c.expires_at.is_not(None), t.jobs.c.expires_at < now)
            )
        ]
        with self.transaction() as db:
            if expired:  # expiry checked again: an appeal opened since the select keeps its job
                c = t.jobs.c
                gone = delete(t.jobs).where(c.id.in_(expired), c.expires_at.is_not(None), c.expires_at < now)
                expired = [row.id for row in db.execute(gone.returning(c.id))]
            db.execute(delete(t.sessions).where(t.sessions.c.expires_at < now))
            if cache_ttl_s is not None:
                db.execute(delete(t.results).where(t.results.c.created_at < now - cache_ttl_s))
        self.delete_media(expired)
        return len(expired)

    # -- result cache -------------------------------------------------------------------------

    def cached_report(
        self, sha256: str, key: str, owner: str, max_age_s: float | None = None
    ) -> dict[str, Any] | None:
        """The report ``owner`` got for these bytes under :func:`serving.jobs.cache.result_key`, if any
        (with ``max_age_s``: cached no longer ago than that, so an expired copy is never served
        while it waits for the next purge).

        The cache is per owner: a hit never tells one key that another uploaded the same bytes.
        """
        c = t.results.c
        where = [c.sha256 == sha256, c.result_key == key, c.owner == owner]
        if max_age_s is not None:
            where.append(c.created_at >= time.time() - max_age_s)
        rows = self.query(select(c.report).where(*where))
        return json.loads(rows[0]["report"]) if rows else None

    def cache_report(self, sha256: str, key: str, owner: str, report: dict[str, Any]) -> None:
        """Remember ``owner``'s report for these bytes under its result key."""
        with self.transaction() as db:
            _cache(db, sha256, key, owner, json.dumps(report))


def _cache(db: Connection, sha256: str, key: str, owner: str, report_json: str) -> None:
    """Replace ``owner``'s cached report for these bytes under ``key`` (inside the caller's transaction)."""
    values = {"sha256": sha256, "result_key": key, "owner": owner}
    db.execute(delete(t.results).filter_by(**values))
    db.execute(insert(t.results).values(**values, report=report_json, created_at=time.time()))


def _job(row: RowMapping | dict[str, Any]) -> Job:
    values = dict(row)
    for field in ("partial", "report", "options"):
        if values[field] is not None:
            values[field] = json.loads(values[field])
    return Job(**values)
