"""Shared fixtures: the ../shared/data folder, generated media, the PostgreSQL server and the
``database_url`` parameter that runs store and API tests on both backends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support import mediagen
from tests.support.postgres import PostgresServer, ServerUnavailable, start_server

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; skips when it is missing outside CI, fails when missing under CI."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED_DATA} is missing but CI is set: it must be present under CI")
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def face_photo() -> np.ndarray:
    """A real face photograph (scikit-image's astronaut, public domain), RGB uint8 512x512."""
    return mediagen.face_photo()


@pytest.fixture(scope="session")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s, 25 fps, 480x360 H.264 MP4 in which the face photo (face ~60 px) moves left to right."""
    path = tmp_path_factory.mktemp("clips") / "face.mp4"
    mediagen.write_face_clip(path, n_frames=50, fps=25, size=(480, 360))
    return path


@pytest.fixture(scope="session")
def mesonet_weights_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights cache holding MesoNet, imported from ../shared/data/weights/mesonet."""
    from detector.models._importing import import_weights

    weights_dir = tmp_path_factory.mktemp("weights")
    import_weights("mesonet", shared_data / "weights" / "mesonet", weights_dir)
    return weights_dir


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the session (``tests/support/postgres.py``).

    Skips with the reason when no server can be started outside CI; under CI it must start.
    """
    try:
        server = start_server()
    except ServerUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must run under CI (make test installs it): {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Runs the test once per store backend: SQLite in the data folder, then a fresh PostgreSQL
    database. Sets (or clears) ``TRUEFRAME_DATABASE_URL``, so every ``Settings()`` the test builds,
    and every process it starts, uses that backend."""
    if request.param == "sqlite":
        monkeypatch.delenv("TRUEFRAME_DATABASE_URL", raising=False)
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    monkeypatch.setenv("TRUEFRAME_DATABASE_URL", url)
    return url
