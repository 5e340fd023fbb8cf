"""68-point facial landmarks for building pseudo-fakes (training only, never at serving time).

The source is dlib's shape predictor ``shape_predictor_68_face_landmarks.dat`` (Kazemi and
Sullivan 2014, trained on iBUG 300-W), which installs from PyPI inside the
``face-recognition-models`` package, with dlib itself from ``dlib-bin`` (a prebuilt wheel). The
300-W data behind the predictor excludes commercial use: the landmarks only shape training masks,
and no shipped model contains them. The predictor is initialised from an MTCNN face box; dlib's
own detector boxes sit lower and tighter, so the box is first mapped onto that convention.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def predictor_path() -> Path:
    """The 68-point model inside the installed ``face_recognition_models`` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("68-point landmarks need the packages dlib-bin and face-recognition-models")
    return Path(spec.origin).parent / "models" / PREDICTOR_FILE


def dlib_box(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """An MTCNN box (forehead to chin) mapped to dlib's detector convention (brows to chin, tighter)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    return round(x1 + 0.04 * w), round(y1 + 0.12 * h), round(x2 - 0.04 * w), round(y2 + 0.02 * h)


class LandmarkModel:
    """Lazy wrapper around dlib's 68-point shape predictor."""

    def __init__(self) -> None:
        self._predictor: Any = None

    def __call__(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """(68, 2) float32 landmarks (x, y) of the face at ``box`` in RGB uint8 ``image``."""
        import dlib

        if self._predictor is None:
            self._predictor = dlib.shape_predictor(str(predictor_path()))
        left, top, right, bottom = dlib_box(box)
        shape = self._predictor(np.ascontiguousarray(image), dlib.rectangle(left, top, right, bottom))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
