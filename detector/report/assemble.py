"""Stage outputs -> :class:`~detector.report.Report`: the one place a report is put together.

The in-process :class:`~detector.pipeline.Pipeline` and the Ray Serve analyzer run the same stages in
different places (one process, or one deployment per stage); both hand their outputs to
:class:`ReportAssembler`, so face crops, calibration, aggregation and fusion are identical whichever
way an item was analysed. Inputs are the RAW model logits; calibration happens here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from detector.faces.extract import FaceResult
from detector.media.frames import Frame
from detector.media.loader import MediaInfo
from detector.models._manifest import ModelEntry
from detector.provenance.pdq import MediaHashes
from detector.provenance.types import ProvenanceReport
from detector.report.schema import (
    FaceBox,
    FaceTrackReport,
    FrameReport,
    Heatmap,
    KnownMatch,
    MediaSection,
    ModelUse,
    PerceptualHash,
    Report,
)
from detector.scoring.aggregate import TrackEvidence, item_logit, synthetic_logit, track_logit
from detector.scoring.calibration import Calibrator
from detector.scoring.fusion.rules import Fusion, FusionInputs
from detector.scoring.logodds import sigmoid
from detector.scoring.scope import Scope, few_frames
from detector.settings import Settings

CropKey = tuple[int, int]
"""(frame index, position of the detection in that frame's list): how crops and logits are keyed."""


@cache
def trueframe_version() -> str:
    """The installed distribution's version (``0+unknown`` when running from a bare tree); read
    once per process: the lookup scans the installed distributions' metadata, about 2.5 ms a
    report, with the GIL held."""
    try:
        return version("trueframe")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass
class StageOutputs:
    """Everything the stages produced for one item (raw logits: calibration is applied later)."""

    media: MediaInfo
    name: str | None
    frames: list[Frame]
    faces: FaceResult
    crop_logits: dict[CropKey, float] = field(default_factory=dict)
    synthetic_logits: dict[int, float] = field(default_factory=dict)
    provenance: ProvenanceReport | None = None
    heatmaps: list[Heatmap] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    scope: Scope = field(default_factory=Scope)
    hashes: MediaHashes | None = None
    known_match: KnownMatch | None = None


def model_use(name: str, entry: ModelEntry) -> ModelUse:
    """A model that contributed, pinned by its weights' sha256."""
    return ModelUse(name=name, task=entry.task, weights_sha256=entry.sha256, licence=entry.licence)


def _calibrator(entry: ModelEntry | None) -> Calibrator:
    if entry is None or entry.calibration is None:
        return Calibrator.identity()
    return Calibrator.from_manifest(entry.calibration)


class ReportAssembler:
    """Calibrates raw logits, aggregates them per track and item, fuses, and builds the report."""

    def __init__(
        self,
        settings: Settings,
        face_model: tuple[str, ModelEntry] | None,
        synthetic_model: tuple[str, ModelEntry] | None = None,
        fusion: Fusion | None = None,
    ) -> None:
        self.settings = settings
        self.face_model = face_model
        self.synthetic_model = synthetic_model
        self.face_calibrator = _calibrator(face_model[1] if face_model else None)
        self.synthetic_calibrator = _calibrator(synthetic_model[1] if synthetic_model else None)
        self.fusion = fusion or Fusion.load(
            settings.fusion.fusion_file,
            face_model=face_model[0] if face_model else None,
            synthetic_model=synthetic_model[0] if synthetic_model else None,
        )

    def calibrated(self, out: StageOutputs) -> tuple[dict[CropKey, float], dict[int, float]]:
        """Each crop's and each frame's logit after its model's calibration."""
        crops = {k: self.face_calibrator.logit_of(v) for k, v in out.crop_logits.items()}
        frames = {i: self.synthetic_calibrator.logit_of(v) for i, v in out.synthetic_logits.items()}
        return crops, frames

    def evidence(self, out: StageOutputs) -> FusionInputs:
        """What fusion sees of one item: the aggregated calibrated logits, provenance and scope."""
        return self._parts(out)[2]

    def _parts(self, out: StageOutputs) -> tuple[list[FaceTrackReport], list[FrameReport], FusionInputs]:
        crops, synth = self.calibrated(out)
        tracks, evidence = self._tracks(out, crops)
        n_crops = sum(t.length for t in tracks)
        synth_series = [synth[f.index] for f in out.frames if f.index in synth]
        inputs = FusionInputs(
            face_logit=item_logit(evidence, self.settings.fusion),
            synthetic_logit=synthetic_logit(synth_series, self.settings.fusion),
            provenance=out.provenance,
            face_basis=self._face_basis(len(tracks), n_crops, len(out.frames)),
            synthetic_basis=f"{len(synth)} frame(s)",
            photographic=out.scope.photographic,
            scope=few_frames(out.scope, out.media.kind, len(out.frames), self.fusion.params.video_frames),
            known_match=out.known_match,
            media_kind=out.media.kind,
        )
        return tracks, self._frames(out, crops, synth), inputs

    def _face_basis(self, n_tracks: int, n_crops: int, n_frames: int) -> str:
        """What the face evidence rests on; with no face, the smallest face that was searched for."""
        if n_tracks or self.face_model is None:
            return f"{n_tracks} face track(s), {n_crops} face crop(s) over {n_frames} frame(s)"
        from detector.stages import smallest_face

        side = smallest_face(self.settings.faces, self.face_model[1].input.to_spec())
        return (
            f"searched {n_frames} frame(s) for faces of at least {side} px; a smaller face is too small "
            "for the face model to judge"
        )

    def build(self, out: StageOutputs) -> Report:
        """The report of one item from its stage outputs."""
        tracks, frames, inputs = self._parts(out)
        score = self.fusion.fuse(inputs)
        models = []
        if self.face_model is not None and out.crop_logits:
            models.append(model_use(*self.face_model))
        if self.synthetic_model is not None and out.synthetic_logits:
            models.append(model_use(*self.synthetic_model))
        warnings = list(out.warnings)
        if out.provenance is not None:
            warnings.extend(out.provenance.warnings)
        timings = dict(out.timings)
        timings.setdefault("total", round(sum(out.timings.values()), 4))  # collect() gives the wall time
        return Report(
            trueframe_version=trueframe_version(),
            media=media_section(out.media, out.name),
            score=score,
            provenance=out.provenance,
            frames=frames,
            tracks=tracks,
            models=models,
            heatmaps=self._heatmaps(out.heatmaps),
            perceptual_hash=_hash_section(out.hashes),
            known_match=out.known_match,
            timings=timings,
            warnings=warnings,
        )

    def _heatmaps(self, maps: list[Heatmap]) -> list[Heatmap]:
        """The maps with the margin of the crop they cover (the face model's, as the stages cut it), so a
        viewer can lay each over its face."""
        if self.face_model is None:
            return maps
        from detector.stages import face_crop_margin

        margin = face_crop_margin(self.face_model[1].input.to_spec(), self.settings.faces.margin)
        return [m.model_copy(update={"crop_margin": margin}) for m in maps]

    def _tracks(
        self, out: StageOutputs, calibrated: dict[CropKey, float]
    ) -> tuple[list[FaceTrackReport], list[TrackEvidence]]:
        timestamps = {frame.index: frame.timestamp for frame in out.frames}
        scales = {frame.index: frame.scale for frame in out.frames}  # boxes go back to the medium's pixels
        # FaceDetection compares by identity, so the detection objects themselves are the keys
        position = {
            det: (det.frame_index, pos) for dets in out.faces.per_frame for pos, det in enumerate(dets)
        }
        reports: list[FaceTrackReport] = []
        evidence: list[TrackEvidence] = []
        for track in out.faces.tracks:
            boxes = []
            logits: list[float] = []
            for det in track.detections:
                key = position[det]
                raw, cal = out.crop_logits.get(key), calibrated.get(key)
                if cal is not None:
                    logits.append(cal)
                boxes.append(
                    FaceBox(
                        frame_index=det.frame_index,
                        timestamp=timestamps[det.frame_index],
                        box=_box(det.box, scales[det.frame_index]),
                        probability=float(det.probability),
                        logit=raw,
                        score=None if cal is None else sigmoid(cal),
                    )
                )
            t_logit = track_logit(logits, self.settings.fusion)
            reports.append(
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
        return reports, evidence

    @staticmethod
    def _frames(
        out: StageOutputs, calibrated: dict[CropKey, float], synth: dict[int, float]
    ) -> list[FrameReport]:
        reports = []
        for frame, dets in zip(out.frames, out.faces.per_frame, strict=True):
            logits = [
                calibrated[(frame.index, p)] for p in range(len(dets)) if (frame.index, p) in calibrated
            ]
            s = synth.get(frame.index)
            reports.append(
                FrameReport(
                    index=frame.index,
                    timestamp=frame.timestamp,
                    faces=len(dets),
                    max_face_logit=max(logits) if logits else None,
                    synthetic_logit=s,
                    synthetic_score=None if s is None else sigmoid(s),
                )
            )
        return reports


def _hash_section(hashes: MediaHashes | None) -> PerceptualHash | None:
    if hashes is None:
        return None
    return PerceptualHash(hashes=list(hashes.hashes), qualities=list(hashes.qualities))


def _box(box: tuple[float, float, float, float], scale: float) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) / scale for v in box)
    return x1, y1, x2, y2


def media_section(info: MediaInfo, name: str | None) -> MediaSection:
    """The report's media section from the probed info (sniffed, never as named)."""
    fields = {k: v for k, v in asdict(info).items() if k in MediaSection.model_fields}
    return MediaSection(name=name, **fields)
