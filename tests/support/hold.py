"""Shared by the "Hold under attack and faults" regression modules (``tests/unit/test_hold_*.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detector.settings import Settings
from tests.support import mediagen
from tests.support.hostile import jpeg
from tests.support.servicekit import make_settings


def settings_in(tmp_path: Path, **serve: Any) -> Settings:
    """Test settings with their data and weights folders under ``tmp_path`` (``serve`` overrides)."""
    return make_settings(tmp_path / "data", tmp_path / "weights", **serve)


def small_photo() -> bytes:
    """The face photo at a quarter of its size, as JPEG."""
    return jpeg(mediagen.face_photo()[::4, ::4])


def small_clip(folder: Path) -> bytes:
    """A 6-frame 64x48 face clip (H.264 in MP4) written to ``folder``."""
    return mediagen.write_face_clip(folder / "c.mp4", n_frames=6, size=(64, 48)).read_bytes()
