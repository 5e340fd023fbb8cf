"""Which database, and an engine for it: SQLite (embedded default) or PostgreSQL (psycopg 3).

``TRUEFRAME_DATABASE_URL`` selects PostgreSQL (``postgresql://user:pass@host:5432/db``; the plain
scheme, ``postgres://`` and ``postgresql+psycopg://`` are all accepted). Without it the store is the
SQLite file ``trueframe.sqlite3`` in the data folder, in WAL mode. Every open runs the Alembic
migrations shipped in :mod:`serving.store.migrations` up to ``head`` under a lock (an advisory lock
on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so replicas starting together migrate once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

from detector.errors import InvalidRequest

STORE_FILE = "trueframe.sqlite3"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x7472_7565  # pg_advisory_xact_lock key: "true"
IMMEDIATE = "trueframe_immediate"
"""Execution option: on SQLite, begin this connection's transaction with ``BEGIN IMMEDIATE``."""


def normalise_url(url: str) -> str:
    """A SQLAlchemy URL with an explicit driver: PostgreSQL goes through psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    if url.startswith(("postgresql+psycopg://", "sqlite:///")):
        return url
    raise InvalidRequest(
        "TRUEFRAME_DATABASE_URL must be a postgresql:// URL (or sqlite:///PATH); got "
        f"{url.split(':', 1)[0]}://..."
    )


def sqlite_url(path: Path) -> str:
    return "sqlite:///" + str(path.expanduser().resolve())


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite connections get WAL, a busy timeout and explicit ``BEGIN``.

    Pools are sized for the service's worker threads (blocking store calls run off the event loop);
    each PostgreSQL process holds at most 25 connections.
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30.0}, pool_size=8, max_overflow=32
        )
        _sqlite_events(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=20)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below, not the driver's
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (Alembic ``upgrade head``), once across processes."""
    from alembic import command
    from alembic.config import Config

    with engine.connect() as conn:
        conn.execution_options(**{IMMEDIATE: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None before the first migration)."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
