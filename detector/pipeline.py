"""In-process analysis: ``Pipeline.analyze(path | bytes) -> Report``, every stage in this process.

The stage order and the glue between stages are :mod:`detector.stages`'; this module only says
that each stage runs here, with its models loaded once per :class:`Pipeline` and reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detector.faces.extract import FaceResult
from detector.faces.tracks import FaceDetection
from detector.media.loader import MediaLoader
from detector.media.sampling import FrameSampler
from detector.models import Classifier, create_model
from detector.models.spec import InputSpec
from detector.provenance.pdq import KnownMedia
from detector.provenance.reader import ProvenanceReader
from detector.provenance.types import ProvenanceReport
from detector.report.assemble import CropKey, ReportAssembler, StageOutputs
from detector.report.schema import Heatmap, Report
from detector.runtime import configure_threads, select_device, timed
from detector.settings import Settings, get_settings
from detector.stages import (
    Options,
    Prepared,
    Progress,
    Ready,
    build_assembler,
    collect,
    face_extractor,
    face_spec,
)

__all__ = ["Pipeline"]


class Pipeline:
    """Media -> provenance -> frames -> faces -> models -> calibrated, fused report, in this process."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.device = select_device(self.settings.runtime.device)
        configure_threads(self.settings.runtime.torch_threads)
        self.loader = MediaLoader(self.settings.limits)
        self.sampler = FrameSampler(self.settings.sampling, self.loader)
        self.faces = face_extractor(self.settings, self.device)
        self.provenance_reader = ProvenanceReader(self.settings.provenance)
        self._face_model: Classifier | None = None
        self._synthetic_model: Classifier | None = None
        self._assembler: ReportAssembler | None = None

    def _create(self, name: str) -> Classifier:
        runtime = self.settings.runtime
        weights = self.settings.models.weights_dir
        return create_model(name, weights_dir=weights, device=self.device, precision=runtime.precision)

    @property
    def face_model(self) -> Classifier:
        """The face-forgery classifier, loaded (and its weights verified) on first use."""
        if self._face_model is None:
            self._face_model = self._create(self.settings.models.face_model)
        return self._face_model

    @property
    def synthetic_model(self) -> Classifier | None:
        """The synthetic-image classifier, or None when none is configured."""
        name = self.settings.models.synthetic_model
        if self._synthetic_model is None and name:
            self._synthetic_model = self._create(name)
        return self._synthetic_model

    @property
    def assembler(self) -> ReportAssembler:
        """Calibrators (from the manifest entries) and fusion parameters, read once."""
        if self._assembler is None:
            self._assembler = build_assembler(self.settings)
        return self._assembler

    @property
    def spec(self) -> InputSpec:
        """The face model's crop spec (from its manifest entry; no weights are loaded for it)."""
        return face_spec(self.settings)

    def analyze(
        self,
        source: str | Path | bytes,
        name: str | None = None,
        frames: int | None = None,
        heatmaps: bool = False,
        progress: Progress | None = None,
        known: KnownMedia | None = None,
    ) -> Report:
        """Analyse one image or video; typed errors for input that cannot be analysed.

        With ``heatmaps`` the report carries Grad-CAM maps of the strongest face crop of each of
        the top ``fusion.heatmap_faces`` face tracks.
        """
        assembler = self.assembler  # fails fast on unknown models or unreadable fusion parameters
        return assembler.build(self.collect(source, name, Options(frames, heatmaps), progress, known))

    def collect(
        self,
        source: str | Path | bytes,
        name: str | None = None,
        options: Options | None = None,
        progress: Progress | None = None,
        known: KnownMedia | None = None,
    ) -> StageOutputs:
        """Every stage but the report (raw logits, faces, provenance, scope), e.g. for calibration."""
        synthetic = bool(self.settings.models.synthetic_model)
        calls = _InProcess(self, source)
        return collect(
            calls, self.spec, self.settings, b"", name, options or Options(), progress, synthetic, known
        )


class _InProcess:
    """:class:`detector.stages.StageCalls` that run each stage here, one after another."""

    def __init__(self, pipeline: Pipeline, source: str | Path | bytes) -> None:
        self.p, self.source = pipeline, source

    def prepare(self, data: bytes, name: str | None, frames: int | None) -> Prepared:
        timings: dict[str, float] = {}
        with timed(timings, "media"):
            media = self.p.loader.load(self.source, name=name)
        with timed(timings, "frames"):
            sample = self.p.sampler.sample(media, frames)
        return Prepared(media.info, media.data, media.name, sample, timings)

    def provenance(self, data: bytes, mime: str) -> Ready[ProvenanceReport]:
        return Ready(self.p.provenance_reader.read(data, mime))

    def detect(self, images: Sequence[np.ndarray]) -> Ready[list[list[FaceDetection]]]:
        return Ready(self.p.faces.detect(images))

    def face_logits(self, crops: list[np.ndarray]) -> Ready[list[float]]:
        return Ready([float(v) for v in self.p.face_model.predict(crops)])

    def synthetic_logits(self, images: Sequence[np.ndarray]) -> Ready[list[float]]:
        model = self.p.synthetic_model
        assert model is not None  # run() asks only when a synthetic model is configured
        return Ready([float(v) for v in model.predict(images)])

    def heatmaps(
        self, faces: FaceResult, crops: dict[CropKey, np.ndarray], logits: dict[CropKey, float], limit: int
    ) -> Ready[list[Heatmap]]:
        from detector.models._gradcam import top_crop_heatmaps

        return Ready(top_crop_heatmaps(self.p.face_model, faces, crops, logits, limit))
