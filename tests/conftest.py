"""Shared fixtures: the ../shared/data folder, generated media, quiet torch threads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.support import mediagen

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
