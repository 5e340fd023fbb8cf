"""The real Ray Serve app, shared by every test of this folder that asks for ``service``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serve_helpers import Service, session_service


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory, mesonet_weights_dir: Path) -> Iterator[Service]:
    """Started once per session (local Ray, two API keys), stopped when the session ends."""
    yield from session_service(tmp_path_factory.mktemp("serve"), mesonet_weights_dir)
