"""In-process analysis: ``analyze(path | bytes) -> Report``, the stages run one after another.

The same stage classes run unchanged in the Serve deployments and the batch scan; this module
only wires them. Models are loaded once per :class:`Pipeline` and reused across calls.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from detector.aggregate import TrackEvidence, item_logit, track_logit
from detector.faces import FaceExtractor, FaceResult, crop_face
from detector.media import Media, MediaLoader
from detector.models import Classifier, create_model
from detector.provenance import ProvenanceReader
from detector.report import (
    FaceBox,
    FaceTrackReport,
    FrameReport,
    MediaSection,
    ModelUse,
    OverallScore,
    Report,
    sigmoid,
)
from detector.runtime import configure_threads, select_device
from detector.sampling import Frame, FrameSample, FrameSampler
from detector.settings import Settings, get_settings


def trueframe_version() -> str:
    """The installed distribution's version (``0+unknown`` when running from a bare tree)."""
    try:
        return version("trueframe")
    except PackageNotFoundError:
        return "0+unknown"


class Pipeline:
    """Media -> provenance -> frames -> faces -> face model -> report, in this process."""

    def __init__(self, settings: Settings | None = None, *, face_model: str | None = None) -> None:
        self.settings = settings or get_settings()
        self.device = select_device(self.settings.runtime.device)
        configure_threads(self.settings.runtime.torch_threads)
        self.loader = MediaLoader(self.settings.limits)
        self.sampler = FrameSampler(self.settings.sampling, self.loader)
        self.faces = FaceExtractor(self.settings.faces, self.device)
        self.provenance = ProvenanceReader(self.settings.provenance)
        self.face_model_name = face_model or self.settings.models.face_model
        self._face_model: Classifier | None = None

    @property
    def face_model(self) -> Classifier:
        """The face-forgery classifier, loaded (and its weights verified) on first use."""
        if self._face_model is None:
            self._face_model = create_model(
                self.face_model_name,
                weights_dir=self.settings.models.weights_dir,
                device=self.device,
            )
        return self._face_model

    def analyze(
        self, source: str | Path | bytes, name: str | None = None, frames: int | None = None
    ) -> Report:
        """Analyse one image or video; typed errors for input that cannot be analysed."""
        timings: dict[str, float] = {}
        if name is None and not isinstance(source, bytes):
            name = Path(source).name
        with _timed(timings, "media"):
            media = self.loader.load(source, name=name)
        with _timed(timings, "provenance"):
            provenance = self.provenance.read(media.data, media.info.mime, name)
        with _timed(timings, "frames"):
            sample = self.sampler.sample(media, frames)
        with _timed(timings, "faces"):
            faces = self.faces.extract(sample.frames)
        with _timed(timings, "face_model"):
            crop_logits = self._score_faces(sample.frames, faces)
        report = self._build_report(media, sample, faces, crop_logits, timings)
        report.provenance = provenance
        report.warnings.extend(provenance.warnings)
        report.timings["total"] = sum(timings.values())
        return report

    def _score_faces(self, frames: list[Frame], faces: FaceResult) -> dict[tuple[int, int], float]:
        """Face-model logit per (frame index, detection position in that frame)."""
        found = [(det, pos) for frame_dets in faces.per_frame for pos, det in enumerate(frame_dets)]
        if not found:
            return {}
        model = self.face_model  # the crop spec belongs to the checkpoint
        margin = model.spec.crop_margin or self.settings.faces.margin
        by_index = {frame.index: frame for frame in frames}
        crops = [
            crop_face(by_index[det.frame_index].image, det.box, margin, model.spec.size[0])
            for det, _ in found
        ]
        keys = [(det.frame_index, pos) for det, pos in found]
        logits = model.predict(crops)
        return {key: float(logit) for key, logit in zip(keys, logits, strict=True)}

    def _build_report(
        self,
        media: Media,
        sample: FrameSample,
        faces: FaceResult,
        crop_logits: dict[tuple[int, int], float],
        timings: dict[str, float],
    ) -> Report:
        timestamps = {frame.index: frame.timestamp for frame in sample.frames}
        position = {
            id(det): (det.frame_index, pos) for dets in faces.per_frame for pos, det in enumerate(dets)
        }
        tracks: list[FaceTrackReport] = []
        evidence: list[TrackEvidence] = []
        for track in faces.tracks:
            boxes = []
            for det in track.detections:
                logit = crop_logits.get(position[id(det)])
                boxes.append(
                    FaceBox(
                        frame_index=det.frame_index,
                        timestamp=timestamps[det.frame_index],
                        box=tuple(float(v) for v in det.box),  # type: ignore[arg-type]
                        probability=float(det.probability),
                        logit=logit,
                        score=None if logit is None else sigmoid(logit),
                    )
                )
            logits = [b.logit for b in boxes if b.logit is not None]
            t_logit = track_logit(logits)
            tracks.append(
                FaceTrackReport(
                    track_id=track.track_id,
                    length=track.length,
                    mean_side=float(track.mean_side),
                    logit=t_logit,
                    score=None if t_logit is None else sigmoid(t_logit),
                    faces=boxes,
                )
            )
            evidence.append(TrackEvidence(logits=logits, mean_side=float(track.mean_side)))
        frame_reports = []
        for frame, dets in zip(sample.frames, faces.per_frame, strict=True):
            logits = [
                crop_logits[(frame.index, pos)]
                for pos in range(len(dets))
                if (frame.index, pos) in crop_logits
            ]
            frame_reports.append(
                FrameReport(
                    index=frame.index,
                    timestamp=frame.timestamp,
                    faces=len(dets),
                    max_face_logit=max(logits) if logits else None,
                )
            )
        models = []
        if self._face_model is not None and crop_logits:
            entry = self._face_model.entry
            models.append(
                ModelUse(
                    name=self._face_model.name,
                    task=entry.task,
                    weights_sha256=entry.sha256,
                    licence=entry.licence,
                )
            )
        return Report(
            trueframe_version=trueframe_version(),
            media=_media_section(media),
            score=_overall(evidence, tracks, len(sample.frames)),
            frames=frame_reports,
            tracks=tracks,
            models=models,
            timings=dict(timings),
            warnings=list(sample.warnings),
        )


def _media_section(media: Media) -> MediaSection:
    fields = {k: v for k, v in asdict(media.info).items() if k in MediaSection.model_fields}
    return MediaSection(name=media.name, **fields)


def _overall(evidence: list[TrackEvidence], tracks: list[FaceTrackReport], n_frames: int) -> OverallScore:
    logit = item_logit(evidence)
    if logit is None:
        return OverallScore(basis="no face was found, and no other detector applies yet: no score is given")
    faces = sum(t.length for t in tracks)
    basis = f"{len(tracks)} face track(s), {faces} face crop(s) over {n_frames} sampled frame(s)"
    p = sigmoid(logit)
    return OverallScore(manipulated=p, authenticity=1.0 - p, logit=logit, basis=basis)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round(time.perf_counter() - start, 4)


_default: Pipeline | None = None


def analyze(source: str | Path | bytes, name: str | None = None, frames: int | None = None) -> Report:
    """Analyse with a process-wide pipeline built on first call from the environment's settings."""
    global _default
    if _default is None:
        _default = Pipeline()
    return _default.analyze(source, name=name, frames=frames)
