"""Which database, and an engine for it: SQLite (embedded default) or PostgreSQL (psycopg 3).

``TRUEFRAME_DATABASE_URL`` selects PostgreSQL (``postgresql://user:pass@host:5432/db``; the plain
scheme, ``postgres://`` and ``postgresql+psycopg://`` are all accepted). Without it the store is the
SQLite file ``trueframe.sqlite3`` in the data folder, in WAL mode. Every open runs the Alembic
migrations shipped in :mod:`serving.store.migrations` up to ``head`` under a lock (an advisory lock
on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so replicas starting together migrate once.

A database that cannot be reached (stopped, restarting, unreachable, locked for too long) is told
apart from a bug by :func:`is_connection_error`; :func:`unavailable` turns it into the typed
:class:`~detector.errors.StoreUnavailable` that the store raises (the one place this mapping lives).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from detector.errors import InvalidRequest, StoreUnavailable

STORE_FILE = "trueframe.sqlite3"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x7472_7565  # pg_advisory_xact_lock key: "true"
IMMEDIATE = "trueframe_immediate"
"""Execution option: on SQLite, begin this connection's transaction with ``BEGIN IMMEDIATE``."""
CONNECT_TIMEOUT_S = 5
"""PostgreSQL: give up opening a connection after this many seconds (unless the URL says otherwise)."""
_PG_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
"""SQLSTATEs of an unreachable PostgreSQL: connection exceptions, shutdown, starting, too many clients."""
_PG_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
"""libpq options: a server that stops answering on an open connection is noticed in about 30 s."""
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error")
"""SQLite raises ``OperationalError`` for SQL mistakes too; only these messages mean "unavailable"."""


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
    """The URL without its password, for messages and logs (one given in the query string too:
    libpq reads ``?password=`` and ``?sslpassword=``)."""
    parsed = make_url(url)
    hidden = {k: "***" for k in parsed.query if k.lower() in ("password", "sslpassword")}
    if hidden:
        parsed = parsed.update_query_dict(hidden)
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now, as opposed to a bug in a statement.

    ``InterfaceError`` and ``DisconnectionError`` always are; ``OperationalError`` is on PostgreSQL
    (psycopg raises it for refused, dropped or timed-out connections and server shutdowns, never for
    SQL mistakes) and on SQLite only for a locked, unopenable or failing file. A statement that
    failed because its connection was invalidated counts too.
    """
    if isinstance(exc, InterfaceError | DisconnectionError | PoolTimeout):
        return True  # PoolTimeout: every pooled connection is stuck on a database that stopped answering
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    if orig is not None and type(orig).__module__ == "sqlite3":
        message = str(orig).lower()
        return any(marker in message for marker in _SQLITE_UNAVAILABLE)
    state = getattr(orig, "sqlstate", None)
    # no SQLSTATE: the driver never reached a server (refused, timed out, dropped); else only the
    # server's own connection and shutdown states count (a deadlock or a full disk is not an outage)
    return state is None or state.startswith(_PG_UNAVAILABLE_STATES)


def unavailable(url: str, exc: BaseException) -> StoreUnavailable:
    """The typed error for a connection-level failure ``exc`` on the database at ``url``.

    The message names the database without its password and the driver's reason on one line.
    """
    orig = getattr(exc, "orig", None) or exc
    reason = " ".join(str(orig).split()) or type(orig).__name__
    if len(reason) > 300:
        reason = reason[:297] + "..."
    where = redacted(url) if "://" in url else url
    return StoreUnavailable(f"cannot reach the database at {where}: {reason}")


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
    query = make_url(url).query
    connect_args: dict[str, Any] = {k: v for k, v in _PG_KEEPALIVE.items() if k not in query}
    if "connect_timeout" not in query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=20, connect_args=connect_args)


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
    from alembic.util.exc import CommandError

    with engine.connect() as conn:
        conn.execution_options(**{IMMEDIATE: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, "head")
            except CommandError as exc:  # a revision this release does not know: a newer trueframe's
                where = redacted(engine.url.render_as_string(hide_password=False))
                raise StoreUnavailable(
                    f"the store at {where} has a schema this trueframe does not know ({exc}); use the "
                    "release that made it, or another data folder or database"
                ) from None


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None before the first migration)."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
