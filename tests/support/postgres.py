"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temporary folder, ``postgres`` on a
free loopback port (its unix socket in the same folder), stopped and deleted at the end.

Debian's ``postgresql`` package puts the binaries in ``/usr/lib/postgresql/<major>/bin`` (``make
test`` installs it when they are missing). As root the server runs as the ``postgres`` system user
(created by that package; created here when missing). ``TRUEFRAME_TEST_DATABASE_URL`` skips all of
this and runs the PostgreSQL tests against that server instead (a managed database: each test
gets its own database in it, so the URL's user needs ``CREATEDB``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SERVER_ENV = "TRUEFRAME_TEST_DATABASE_URL"
RUN_AS = "postgres"


class ServerUnavailable(RuntimeError):
    """No PostgreSQL server could be started (binaries missing, initdb failed...)."""


def pg_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest version."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user(argv: list[str]) -> list[str]:
    """``argv`` run as the unprivileged ``postgres`` user when we are root (postgres refuses root)."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("runuser") is None:
        raise ServerUnavailable("running as root without runuser: cannot start postgres as another user")
    with contextlib.suppress(subprocess.CalledProcessError):
        subprocess.run(["id", RUN_AS], check=True, capture_output=True)
        return ["runuser", "-u", RUN_AS, "--", *argv]
    subprocess.run(["useradd", "--system", "--no-create-home", RUN_AS], check=True, capture_output=True)
    return ["runuser", "-u", RUN_AS, "--", *argv]


@dataclass
class PostgresServer:
    """A running server: ``admin_url`` reaches its ``postgres`` database as the superuser."""

    admin_url: str
    root: Path | None
    bin_dir: Path | None

    def create_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy-free ``postgresql://`` URL."""
        import psycopg

        name = "tf_" + secrets.token_hex(6)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"

    def stop(self) -> None:
        if self.root is None or self.bin_dir is None:
            return
        data = self.root / "data"
        subprocess.run(
            _as_user([str(self.bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PostgresServer:
    """Start a throwaway server (or use ``TRUEFRAME_TEST_DATABASE_URL``); :class:`ServerUnavailable`."""
    if url := os.environ.get(SERVER_ENV):
        return PostgresServer(url, None, None)
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise ServerUnavailable("PostgreSQL binaries not found (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="trueframe-pg-"))
    try:
        return _start(bin_dir, root)
    except (OSError, subprocess.SubprocessError, ServerUnavailable) as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise ServerUnavailable(f"could not start PostgreSQL from {bin_dir}: {exc}") from exc


def _start(bin_dir: Path, root: Path) -> PostgresServer:
    data, port = root / "data", _free_port()
    if os.geteuid() == 0:
        _as_user(["true"])  # makes sure the user exists
        shutil.chown(root, RUN_AS)
        root.chmod(0o700)
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
    _run(_as_user([*initdb, "--no-sync"]), "initdb")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
    start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start"]
    _run(_as_user(start), "pg_ctl start")
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    _wait_ready(url)
    return PostgresServer(url, root, bin_dir)


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ServerUnavailable(f"{what} failed: {(done.stderr or done.stdout).strip()[-500:]}")


def _wait_ready(url: str, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"the server did not accept connections: {exc}") from exc
            time.sleep(0.2)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    server = start_server()
    try:
        yield server
    finally:
        server.stop()
