"""Stage outputs of evaluation items, computed once and cached, so calibration can be refitted freely.

:func:`collect_outputs` runs the same stages a user's request runs (:func:`detector.stages.collect`
through :class:`detector.pipeline.Pipeline`) and keeps the :class:`StageOutputs` without pixels:
the raw crop and frame logits, faces, tracks, provenance and scope. Any calibration or fusion is
then applied by :meth:`ReportAssembler.build`, giving exactly the report a user would get, in
microseconds. The cache key covers the file's bytes, the models' weights, every setting the
stages read (faces, sampling, frames) and the stages' code version
(:data:`detector.stages.ANALYSIS_VERSION`); calibration and fusion are deliberately not part of it.

A baseline model (MesoNet) is scored on the same faces (or whole images when none) for the
comparison rows of every table.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detector.errors import TrueframeError
from detector.media.frames import Images
from detector.stages import Options

if TYPE_CHECKING:
    from detector.models.base import Classifier
    from detector.pipeline import Pipeline
    from detector.report.assemble import StageOutputs
    from detector.settings import Settings


@dataclass
class Collected:
    """One item's stage outputs (no pixels) and the baseline model's raw logits, or its typed error."""

    outputs: StageOutputs | None
    baseline: list[float] = field(default_factory=list)
    error: str | None = None


def stage_key(settings: Settings, frames: int | None) -> str:
    """What stage outputs depend on: the models' weights and the face and sampling settings."""
    from detector.stages import ANALYSIS_VERSION, configured_models, resolved_faces

    face, synthetic = configured_models(settings)
    parts = {
        "analysis": ANALYSIS_VERSION,
        "face": [face[0], face[1].sha256],
        "synthetic": None if synthetic is None else [synthetic[0], synthetic[1].sha256],
        "faces": resolved_faces(settings).keyed(),
        "sampling": settings.sampling.keyed(),
        "frames": frames or settings.sampling.frames,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def strip_pixels(outputs: StageOutputs) -> StageOutputs:
    """The outputs with every frame's image replaced by a 1x1 placeholder (what the cache keeps)."""
    blank = np.zeros((1, 1, 3), np.uint8)
    frames = [replace(f, pixels=blank, packing=None) for f in outputs.frames]
    return replace(outputs, frames=frames, heatmaps=[])


def baseline_logits(model: Classifier, outputs: StageOutputs, settings: Settings) -> list[float]:
    """Raw logits of ``model`` on the item's face crops (its own crop spec), else on its whole frames."""
    from detector.stages import crop_faces

    inputs: Sequence[np.ndarray] = Images(outputs.frames)
    if outputs.faces.n_faces:
        _keys, inputs = crop_faces(outputs.frames, outputs.faces, model.spec, settings.faces.margin)
    return [float(v) for v in model.predict(inputs)] if len(inputs) else []


class OutputCache:
    """``<root>/<stage key>/<sha256 of the file>.pkl`` holding one :class:`Collected`."""

    def __init__(
        self, root: Path, settings: Settings, frames: int | None, baseline: Classifier | None
    ) -> None:
        tag = stage_key(settings, frames) + ("" if baseline is None else f"-{baseline.entry.sha256[:8]}")
        self.dir = root / tag
        self.settings, self.frames, self.baseline = settings, frames, baseline

    def _path(self, media: Path) -> Path:
        return self.dir / (hashlib.sha256(media.read_bytes()).hexdigest() + ".pkl")

    def get(self, pipeline: Pipeline, media: Path) -> Collected:
        """The cached result for ``media``, computing and storing it when absent."""
        path = self._path(media)
        if path.exists():
            with open(path, "rb") as fh:
                cached: Collected = pickle.load(fh)
            return cached
        found = collect_outputs(pipeline, media, self.frames, self.baseline)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(found, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        return found


def collect_outputs(
    pipeline: Pipeline, media: Path, frames: int | None, baseline: Classifier | None
) -> Collected:
    """Run the stages on one file; a typed error (unsupported, corrupt...) is kept as the result."""
    try:
        outputs = pipeline.collect(media, options=Options(frames=frames))
    except TrueframeError as exc:
        return Collected(None, error=exc.code)
    scores = baseline_logits(baseline, outputs, pipeline.settings) if baseline is not None else []
    return Collected(strip_pixels(outputs), scores)
