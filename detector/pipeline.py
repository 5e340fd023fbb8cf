"""In-process analysis: ``analyze(path | bytes) -> Report``, the stages run one after another.

media -> provenance -> frames -> faces -> face model on the crops, synthetic-image model on the
whole frames (when ``models.synthetic_model`` is set) -> :class:`detector.assemble.ReportAssembler`
(calibration, aggregation, fusion, verdict). Grad-CAM heatmaps of the top face crops are added on
request. The same stage classes run unchanged in the Serve deployments and the batch scan; this
module only wires them. Models are loaded once per :class:`Pipeline` and reused across calls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detector.assemble import CropKey, ReportAssembler, StageOutputs, face_crops, trueframe_version
from detector.faces import FaceExtractor, FaceResult
from detector.media import MediaLoader
from detector.models import Classifier, create_model
from detector.models.registry import get_entry
from detector.provenance import ProvenanceReader
from detector.report import Heatmap, Report
from detector.runtime import configure_threads, select_device, timed
from detector.sampling import Frame, FrameSampler
from detector.settings import Settings, get_settings

__all__ = ["Pipeline", "analyze", "trueframe_version"]


class Pipeline:
    """Media -> provenance -> frames -> faces -> models -> calibrated, fused report, in this process."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        face_model: str | None = None,
        synthetic_model: str | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.device = select_device(self.settings.runtime.device)
        configure_threads(self.settings.runtime.torch_threads)
        self.loader = MediaLoader(self.settings.limits)
        self.sampler = FrameSampler(self.settings.sampling, self.loader)
        self.faces = FaceExtractor(self.settings.faces, self.device)
        self.provenance = ProvenanceReader(self.settings.provenance)
        self.face_model_name = face_model or self.settings.models.face_model
        self.synthetic_model_name = synthetic_model or self.settings.models.synthetic_model
        self._face_model: Classifier | None = None
        self._synthetic_model: Classifier | None = None
        self._assembler: ReportAssembler | None = None

    def _create(self, name: str) -> Classifier:
        return create_model(name, weights_dir=self.settings.models.weights_dir, device=self.device)

    @property
    def face_model(self) -> Classifier:
        """The face-forgery classifier, loaded (and its weights verified) on first use."""
        if self._face_model is None:
            self._face_model = self._create(self.face_model_name)
        return self._face_model

    @property
    def synthetic_model(self) -> Classifier | None:
        """The synthetic-image classifier, or None when none is configured."""
        if self._synthetic_model is None and self.synthetic_model_name:
            self._synthetic_model = self._create(self.synthetic_model_name)
        return self._synthetic_model

    @property
    def assembler(self) -> ReportAssembler:
        """Calibrators (from the manifest entries) and fusion parameters, read once."""
        if self._assembler is None:
            synth = self.synthetic_model_name
            self._assembler = ReportAssembler(
                self.settings,
                (self.face_model_name, get_entry(self.face_model_name)),
                (synth, get_entry(synth)) if synth else None,
            )
        return self._assembler

    def analyze(
        self,
        source: str | Path | bytes,
        name: str | None = None,
        frames: int | None = None,
        heatmaps: bool = False,
    ) -> Report:
        """Analyse one image or video; typed errors for input that cannot be analysed.

        With ``heatmaps`` the report carries Grad-CAM maps of the strongest face crop of each of
        the top ``fusion.heatmap_faces`` face tracks.
        """
        assembler = self.assembler  # fails fast on unknown models or unreadable fusion parameters
        timings: dict[str, float] = {}
        with timed(timings, "media"):
            media = self.loader.load(source, name=name)
        name = media.name  # a path's file name when none was given
        with timed(timings, "provenance"):
            provenance = self.provenance.read(media.data, media.info.mime, name)
        with timed(timings, "frames"):
            sample = self.sampler.sample(media, frames)
        with timed(timings, "faces"):
            faces = self.faces.extract(sample.frames)
        with timed(timings, "face_model"):
            crops, crop_logits = self._score_faces(sample.frames, faces)
        with timed(timings, "synthetic_model"):
            synthetic_logits = self._score_frames(sample.frames)
        maps: list[Heatmap] = []
        if heatmaps and crop_logits:
            from detector.gradcam import top_crop_heatmaps

            with timed(timings, "heatmaps"):
                limit = self.settings.fusion.heatmap_faces
                maps = top_crop_heatmaps(self.face_model, faces, crops, crop_logits, limit)
        outputs = StageOutputs(
            media=media.info,
            name=name,
            frames=sample.frames,
            faces=faces,
            crop_logits=crop_logits,
            synthetic_logits=synthetic_logits,
            provenance=provenance,
            heatmaps=maps,
            timings=timings,
            warnings=list(sample.warnings),
        )
        return assembler.build(outputs)

    def _score_faces(
        self, frames: list[Frame], faces: FaceResult
    ) -> tuple[dict[CropKey, np.ndarray], dict[CropKey, float]]:
        """The face model's crops and raw logits, keyed by (frame index, detection position)."""
        if faces.n_faces == 0:
            return {}, {}
        model = self.face_model  # the crop spec belongs to the checkpoint
        keys, crops = face_crops(frames, faces, model.spec, self.settings.faces.margin)
        logits = model.predict(crops)
        return dict(zip(keys, crops, strict=True)), {
            key: float(v) for key, v in zip(keys, logits, strict=True)
        }

    def _score_frames(self, frames: list[Frame]) -> dict[int, float]:
        """The synthetic-image model's raw logit per whole frame (empty when none is configured)."""
        model = self.synthetic_model
        if model is None or not frames:
            return {}
        logits = model.predict([frame.image for frame in frames])
        return {frame.index: float(v) for frame, v in zip(frames, logits, strict=True)}


_default: Pipeline | None = None


def analyze(
    source: str | Path | bytes, name: str | None = None, frames: int | None = None, heatmaps: bool = False
) -> Report:
    """Analyse with a process-wide pipeline built on first call from the environment's settings."""
    global _default
    if _default is None:
        _default = Pipeline()
    return _default.analyze(source, name=name, frames=frames, heatmaps=heatmaps)
