"""The one orchestration of the stages: their order, their glue, the timing keys and progress points.

    media (load, limits, probe) -> frames (sample) -> provenance, faces (anchors' whole frames,
    then regions between them: :mod:`detector.faces.plan`; then linked into tracks) and
    synthetic_model (whole frames), all sent at once, with the watermark search meanwhile
    -> face_model (crops cut with the checkpoint's spec) -> heatmaps (on request) -> report
    (calibrate, aggregate, fuse).

Three runners place the stages differently: :class:`detector.pipeline.Pipeline` calls them in this
process, the Ray Serve ingress through deployment handles, the Ray Data scan as batch steps. A
runner only says *where* a stage runs (:class:`StageCalls`); everything between the stages lives
here, so no runner re-implements it: frame indices on detections, tracks, face crops and the keys
of their logits, the configured models and the report assembler built from settings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from detector.faces.tracks import FaceDetection, link_tracks
from detector.media.frames import Frame, Images
from detector.provenance.pdq import perceptual_hashes
from detector.runtime import timed
from detector.settings import FaceSettings, Settings, check_frames

if TYPE_CHECKING:
    import numpy as np
    import torch

    from detector.faces.extract import FaceExtractor, FaceResult, FrameLike
    from detector.media.loader import MediaInfo
    from detector.media.sampling import FrameSample
    from detector.models._manifest import ModelEntry
    from detector.models.spec import InputSpec
    from detector.provenance.pdq import KnownMedia
    from detector.provenance.types import InvisibleWatermark, ProvenanceReport
    from detector.report.assemble import CropKey, ReportAssembler, StageOutputs
    from detector.report.schema import Heatmap, Report
    from detector.scoring.scope import ScopeCheck

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

TIMING_KEYS: tuple[str, ...] = (
    "media",
    "frames",
    "provenance",
    "faces",
    "face_model",
    "synthetic_model",
    "watermark",
    "heatmaps",
    "scope",
    "known_media",
)
"""Keys of ``report.timings`` (plus ``total``, the wall time: remote stages overlap), in stage order."""

PROGRESS: dict[str, float] = {"media": 0.02, "faces": 0.15, "models": 0.65, "report": 0.95}
"""Where each phase starts on a job's 0..1 progress scale."""

Progress = Callable[[float, dict[str, Any]], None]
"""``(fraction, partial results)``, e.g. ``(0.15, {"stage": "faces", "frames_sampled": 8})``. It may
raise to stop the analysis (a job deleted meanwhile); it is then called again while a remote stage is
waited for (:data:`POLL_S`), so a long stage stops too."""

Poll = Callable[[], None]
"""Called between the parts of a remote stage's result; raises when the analysis is no longer wanted."""

POLL_S = 1.0
"""How often, at most, a wait on remote stages asks the progress callback again whether to go on."""


class Pending(Protocol[T_co]):
    """A stage call that may still be running elsewhere. ``result(poll)`` waits for it, calling
    ``poll`` between its parts; ``cancel()`` gives up the parts not collected yet (best effort)."""

    def result(self, poll: Poll | None = None) -> T_co: ...

    def cancel(self) -> None: ...


@dataclass(frozen=True)
class Ready(Generic[T]):
    """A stage call that already ran (in-process): nothing to wait for or to cancel."""

    value: T

    def result(self, poll: Poll | None = None) -> T:
        return self.value

    def cancel(self) -> None:
        return None


@dataclass
class Prepared:
    """The loaded and sampled medium: what every later stage starts from."""

    info: MediaInfo
    data: bytes
    name: str | None
    sample: FrameSample
    timings: dict[str, float] = field(default_factory=dict)


class StageCalls(Protocol):
    """Where the stages run. Calls may start work and return at once; :func:`run` collects results."""

    def prepare(self, data: bytes, name: str | None, frames: int | None) -> Prepared: ...

    def provenance(self, data: bytes, mime: str) -> Pending[ProvenanceReport]: ...

    def detect(self, images: Sequence[np.ndarray]) -> Pending[list[list[FaceDetection]]]: ...

    def face_logits(self, crops: list[np.ndarray]) -> Pending[list[float]]: ...

    def synthetic_logits(self, images: Sequence[np.ndarray]) -> Pending[list[float]]: ...

    def heatmaps(
        self, faces: FaceResult, crops: dict[CropKey, np.ndarray], logits: dict[CropKey, float], limit: int
    ) -> Pending[list[Heatmap]]: ...


@dataclass(frozen=True)
class Options:
    """Per-request choices that change the report: sampled frames (None: settings) and heatmaps."""

    frames: int | None = None
    heatmaps: bool = False

    def __post_init__(self) -> None:
        check_frames(self.frames)


ANALYSIS_VERSION = 21
"""Bumped whenever a change to the stages' code changes what they find for the same input, settings and
weights, or to the fusion rules' code what a report says (version 2: videos' faces followed between
anchors, and the MTCNN pyramid level for faces as large as the frame; 3: the scope's degraded-media
reasons, which the pixels can no longer turn into an accusation, with a video's bits per pixel counted
on its own stream and lossy WebP quality read from its header; 4: AVIF and HEIC images limited as
formats no model was validated on; 5: AVIF quality read from its AV1 headers, heavy AVIF degraded; 6:
HEIC quality read from its HEVC headers, heavy HEIC degraded; 7: a degraded item's summary names
only the reasons its pixels are degraded, text only; 8: rule ``face_unweighed`` and model signals
worded at even odds or "not counted"; 9: ``score.basis`` joins the models' sentences without their
full stops, and no sentence words a probability as 0% or 100%, text only; 10: ``score.manipulated_range``,
the fused probability's calibration range; 11: a video whose first sampled frame lies past its first
GOP decodes exactly where FFmpeg needs the encoder's version from the stream's first packet: x264
build 148's High 4:4:4 FaceForensics++ clips came out green at ``--frames 1``; no clip of the dev set
seeks past its first GOP first, so its figures stay; 12: greyscale media and videos with no face found
are limited by the scope, and a picture under 128 px on one side only is not called tiny; 13: an image
of a picture inset in a flat canvas, such as a screenshot, is limited by the scope; 14: such an
image scored with a fusion section of its own, reverted; 15: the synthetic-image model judges such a
picture cut out of its canvas; 16: the canvas is told by its colour, so a picture with flat patches
of its own on its border is still found inset; 17: an element attached to a side of the picture, such
as a chat's bubble of text, is peeled off; 18: the cut leaves out lines of text a page sets right above
or below the picture; 19: a picture inside a post's card on a page is cut out of the card; 20: an
image showing an inset picture is a drawing only when the picture cut out of it is; 21: a card whose
picture could not be cut inside it is cut without the rows of its header and actions). Result and
evaluation cache keys include it, so no cache answers with what older code found. Since version 10 a change to
the fusion's code alone (rules or wording, the stages finding the same) bumps :data:`REPORT_VERSION`."""

REPORT_VERSION = 8
"""Bumped whenever a change to the fusion's code (its rules or its sentences), or to a report's words
alone, changes what a report says for the same findings (version 1: a video's synthetic-image
sentence names its frames, not "the image", and a non-photographic video is worded as footage; 2:
rule ``uncalibrated``, a verdict from models the fusion was not fitted for kept a step closer to
uncertain, and worded as such; 3: a clip with one distinct frame is warned about in the singular; 4:
``score.logit`` null when rule ``known_match`` decided, as for a signed AI declaration; 5: the summary
names every reason of ``score.limited``, also when no rule moved the verdict; 6, one release:
invalid credentials whose failures are only an ingredient's are flagged ``ingredient_invalid``, not
``tampered``, and an untrusted signer is no longer listed among the tampering codes; the summary of
a signed AI declaration says when its signer is not on the trust list; the summary names the
stated provenance priors in its probability (AI metadata, a trusted capture, a reviewed authentic
near-duplicate); a video's watermark signal says videos are not searched, not that no mark was
decoded; no stated prior is given log-odds when a signed AI declaration or a watermark decided; 7:
the file's own intact manifest decides with its own AI declaration when only an ingredient's
credentials fail; an extreme strip or a blank picture is named as such in the summary and the model
signals, not called a drawing, screenshot or flat graphic; an animated or multi-page image warns
that only its first frame was analysed; rule ``metadata_ai``: a file whose own unsigned metadata
names generative AI is at most ``uncertain``; 8: a video checked on fewer frames than the video
fusion was calibrated on is limited, and says so; an AI declaration an intact file passed on from an
ingredient whose credentials fail is said to be not counted for that reason, not because "the
credentials as a whole failed"). The result key
includes it; the evaluation cache does not, since it keeps stage outputs and refits the
fusion on every run."""


def configured_models(settings: Settings) -> tuple[tuple[str, ModelEntry], tuple[str, ModelEntry] | None]:
    """``(name, manifest entry)`` of the face model and of the synthetic-image model (None when unset)."""
    from detector.models._manifest import check_roles

    models = settings.models
    face = _setting_entry("TRUEFRAME_MODELS__FACE_MODEL", models.face_model)
    synthetic = (
        (models.synthetic_model, _setting_entry("TRUEFRAME_MODELS__SYNTHETIC_MODEL", models.synthetic_model))
        if models.synthetic_model
        else None
    )
    check_roles(models.face_model, models.synthetic_model)  # each checked for the role it fills
    return (models.face_model, face), synthetic


def _setting_entry(variable: str, name: str) -> ModelEntry:
    """The manifest entry of the model a setting names; an unknown one is ``unknown_model`` naming
    the variable (a command's ``--model`` is checked, and named, before it replaces the setting)."""
    from detector.errors import UnknownModel
    from detector.models._registry import get_entry

    try:
        return get_entry(name)
    except UnknownModel as exc:
        raise UnknownModel(f"{variable}: {exc.message}") from None


def build_assembler(settings: Settings) -> ReportAssembler:
    """The report assembler (calibrators from the manifest, fusion parameters) for ``settings``."""
    from detector.report.assemble import ReportAssembler

    face, synthetic = configured_models(settings)
    return ReportAssembler(settings, face, synthetic)


def face_spec(settings: Settings) -> InputSpec:
    """The face model's input spec (crop margin and size belong to its checkpoint)."""
    return configured_models(settings)[0][1].input.to_spec()


def detect_and_track(
    frames: Sequence[FrameLike], found: Sequence[Sequence[FaceDetection]], settings: FaceSettings
) -> FaceResult:
    """Per-frame detections (in frame order) given their frame's index, then linked into tracks."""
    from detector.faces.extract import FaceResult

    per_frame = [
        [replace(d, frame_index=f.index) for d in dets] for f, dets in zip(frames, found, strict=True)
    ]
    return FaceResult(per_frame, link_tracks(per_frame, settings.track_iou, settings.track_center_dist))


def find_faces(
    detect: Callable[[Sequence[np.ndarray]], Sequence[Sequence[FaceDetection]]],
    frames: Sequence[FrameLike],
    settings: FaceSettings,
    min_face_px: float,
) -> FaceResult:
    """The faces and tracks of ``frames`` by the detection plan (:mod:`detector.faces.plan`) over
    ``detect``, every round in one go (:func:`collect` sends the first round early instead)."""
    from detector.faces.plan import detect_planned

    found = detect_planned(detect, Images(frames), settings, min_face_px)
    return detect_and_track(frames, found, settings)


def crop_faces(
    frames: Sequence[Frame], faces: FaceResult, spec: InputSpec, default_margin: float
) -> tuple[list[CropKey], list[np.ndarray]]:
    """The face model's input crops (margin and size from its spec) and their keys."""
    from detector.faces.extract import crop_face

    by_index = {frame.index: frame for frame in frames}
    margin = face_crop_margin(spec, default_margin)
    keys: list[CropKey] = []
    crops: list[np.ndarray] = []
    for dets in faces.per_frame:  # one frame's faces per list
        if not dets:
            continue
        image = by_index[dets[0].frame_index].image  # its RGB, read once for all its faces
        for pos, det in enumerate(dets):
            keys.append((det.frame_index, pos))
            crops.append(crop_face(image, det.box, margin, spec.size[0]))
    return keys, crops


def face_crop_margin(spec: InputSpec, default_margin: float) -> float:
    """The margin of the face model's crops: its own (manifest), else the settings' ``faces.margin``."""
    return spec.crop_margin or default_margin


def judged_face_side(spec: InputSpec) -> float:
    """The smallest face side (px) the face model judges without enlarging its crop more than 2x."""
    return spec.size[0] / (spec.crop_margin or 1.0) / 2.0


SEARCH_MARGIN = 0.8
"""MTCNN's box of one face varies by about 20% with the pyramid scale that finds it, so the search
goes this far below the judged size to keep faces of that size (on the bench clips, searching
exactly at the judged size lost 2-3 of 25 faces per clip that a 40 px search found; at 39 px two
720p clips still give 22 of 25: the pyramid's scale alignment, not a size, decides those)."""


def smallest_face(faces: FaceSettings, spec: InputSpec) -> int:
    """The smallest face side (full-resolution px) searched: the setting, else the judged size
    (:func:`judged_face_side`) less :data:`SEARCH_MARGIN`; no smaller face is searched for."""
    return faces.min_face_px or math.floor(judged_face_side(spec) * SEARCH_MARGIN)


def resolved_faces(settings: Settings, spec: InputSpec | None = None) -> FaceSettings:
    """The face settings with ``min_face_px`` resolved for the configured face model (result keys use
    it); ``spec`` is that model's input when the caller read it from the manifest (the registry,
    which imports every architecture and so torch, is then left alone)."""
    spec = spec if spec is not None else face_spec(settings)
    return settings.faces.model_copy(update={"min_face_px": smallest_face(settings.faces, spec)})


def face_extractor(settings: Settings, device: str | torch.device) -> FaceExtractor:
    """The face detector of every stage runner, never searching for faces the face model cannot judge."""
    from detector.faces.extract import FaceExtractor

    return FaceExtractor(resolved_faces(settings), device)


def keyed(keys: Sequence[Any], values: Iterable[Any]) -> dict[Any, float]:
    """``{key: float(value)}`` for logits returned in the order of their inputs."""
    return {k: float(v) for k, v in zip(keys, values, strict=True)}


def watermark_of(kind: str, frames: Sequence[Frame]) -> InvisibleWatermark | None:
    """A known invisible watermark in a still image's pixels (None for videos and unmarked images)."""
    from detector.provenance.types import InvisibleWatermark
    from detector.provenance.watermark import find_watermark

    if kind != "image" or not frames:
        return None
    found = find_watermark(frames[0].image)
    if found is None:
        return None
    return InvisibleWatermark(scheme=found.scheme, bit_error_rate=found.bit_error_rate, bits=found.bits)


def marked(provenance: ProvenanceReport, watermark: InvisibleWatermark | None) -> ProvenanceReport:
    """The provenance report with the watermark found in the pixels (unchanged when none was)."""
    return provenance if watermark is None else provenance.model_copy(update={"watermark": watermark})


class _Partial:
    """Progress with cumulative partial results: each report keeps what earlier stages found."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress, self.found = progress, dict[str, Any]()
        self.fraction, self.told = 0.0, time.monotonic()

    def __call__(self, fraction: float, partial: dict[str, Any]) -> None:
        self.found.update(partial)
        self.fraction, self.told = fraction, time.monotonic()
        if self.progress is not None:
            self.progress(fraction, dict(self.found))

    def poll(self) -> None:
        """Report the last progress again once :data:`POLL_S` has passed since the last report: the
        callback then says (by raising) whether a long remote stage should go on."""
        if self.progress is not None and time.monotonic() - self.told >= POLL_S:
            self(self.fraction, {})


@dataclass
class _Started(Generic[T]):
    """A stage call in flight: when it was sent and, for one that ran in the call, when it returned."""

    key: str
    pending: Pending[T]
    sent: float
    done: float | None


class _Clock:
    """Timings of one analysis under :data:`TIMING_KEYS`, right whether a stage runs in the call
    (in-process: its own run time) or elsewhere (seconds from sending it to collecting its result).

    It also holds the stages in flight: a wait polls ``poll`` between a remote stage's parts, and
    leaving the ``with`` block on an error (a deleted job's progress raising) cancels every stage
    still in flight, so no replica keeps working for an analysis that is gone.
    """

    def __init__(self, timings: dict[str, float], poll: Poll | None = None) -> None:
        self.timings, self.poll = timings, poll
        self.in_flight: list[_Started[Any]] = []

    def __enter__(self) -> _Clock:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            for started in self.in_flight:
                started.pending.cancel()
        self.in_flight.clear()

    def start(self, key: str, call: Callable[[], Pending[T]]) -> _Started[T]:
        sent = time.perf_counter()
        pending = call()
        started = _Started(key, pending, sent, time.perf_counter() if isinstance(pending, Ready) else None)
        self.in_flight.append(started)
        return started

    def wait(self, started: _Started[T]) -> T:
        value = started.pending.result(self.poll)
        self.in_flight.remove(started)
        end = started.done if started.done is not None else time.perf_counter()
        self.timings[started.key] = round(self.timings.get(started.key, 0.0) + end - started.sent, 4)
        return value

    def run(self, key: str, work: Callable[[], T]) -> T:
        return self.wait(self.start(key, lambda: Ready(work())))


def synthetic_inputs(
    info: MediaInfo, images: Sequence[np.ndarray]
) -> tuple[Sequence[np.ndarray], ScopeCheck | None]:
    """What the synthetic-image model judges: the frames, or for an image of a picture inset in a flat
    canvas (a screenshot) the picture cut out of it (:func:`detector.scoring.scope.inset_picture`);
    and the image's own scope check, which :func:`outputs` then reuses."""
    from detector.scoring.scope import image_check, inset_picture

    check = image_check(info, images)
    if check is None or not check.inset_picture:
        return images, check
    return [inset_picture(images[0], check)], check


def outputs(
    prepared: Prepared,
    faces: FaceResult,
    crop_logits: dict[CropKey, float],
    synthetic_logits: dict[int, float],
    provenance: ProvenanceReport | None,
    spec: InputSpec,
    heatmaps: list[Heatmap] | None = None,
    timings: dict[str, float] | None = None,
    checked: tuple[ScopeCheck | None] | None = None,
) -> StageOutputs:
    """Everything the stages found for one medium, with its scope (:func:`detector.scoring.scope.assess`;
    ``checked`` holds the image's own check when :func:`synthetic_inputs` already ran it)."""
    from detector.report.assemble import StageOutputs
    from detector.scoring.scope import assess

    frames = prepared.sample.frames
    sides = [det.side for dets in faces.per_frame for det in dets]
    spent = dict(prepared.timings if timings is None else timings)
    with timed(spent, "scope"):
        scope = assess(prepared.info, Images(frames), sides, judged_face_side(spec), *(checked or ()))
    return StageOutputs(
        media=prepared.info,
        name=prepared.name,
        frames=frames,
        faces=faces,
        crop_logits=crop_logits,
        synthetic_logits=synthetic_logits,
        provenance=provenance,
        heatmaps=heatmaps or [],
        timings=spent,
        warnings=list(prepared.sample.warnings),
        scope=scope,
    )


def collect(
    calls: StageCalls,
    spec: InputSpec,
    settings: Settings,
    data: bytes,
    name: str | None,
    options: Options,
    progress: Progress | None = None,
    synthetic: bool = True,
    known: KnownMedia | None = None,
) -> StageOutputs:
    """Run every stage but the report through ``calls``, in the stage order; typed errors for bad input."""
    from detector.faces.plan import DetectionPlan

    began = time.perf_counter()
    tell = _Partial(progress)
    tell(PROGRESS["media"], {"stage": "media"})
    prepared = calls.prepare(data, name, options.frames)
    clock = _Clock(dict(prepared.timings), tell.poll)
    frames = prepared.sample.frames
    images = Images(frames)  # each frame unpacked to RGB when read, never all at once
    with clock:  # an error (a deleted job's progress raising) cancels the stages in flight
        # Everything that needs only the frames is sent first, so remote stages overlap; the watermark
        # search runs here meanwhile.
        provenance = clock.start("provenance", lambda: calls.provenance(prepared.data, prepared.info.mime))
        tell(PROGRESS["faces"], {"stage": "faces", "frames_sampled": len(frames)})
        plan = DetectionPlan(images, settings.faces, smallest_face(settings.faces, spec))
        first = plan.requests()
        detecting = clock.start("faces", lambda: calls.detect(first))
        judged, check = clock.run("scope", lambda: synthetic_inputs(prepared.info, images))
        synthesising = (
            clock.start("synthetic_model", lambda: calls.synthetic_logits(judged))
            if synthetic and images
            else None
        )
        watermark = clock.run("watermark", lambda: watermark_of(prepared.info.kind, frames))
        found: list[list[FaceDetection]] = clock.wait(detecting)
        plan.take(found)
        # then the frames between anchors: a few small regions each
        per_frame = plan.run(lambda batch: clock.wait(clock.start("faces", partial(calls.detect, batch))))
        faces = detect_and_track(frames, per_frame, settings.faces)
        tell(
            PROGRESS["models"],
            {"stage": "models", "faces_found": faces.n_faces, "face_tracks": len(faces.tracks)},
        )
        keys, crops = crop_faces(frames, faces, spec, settings.faces.margin)
        judging = clock.start(
            "face_model", lambda: calls.face_logits(crops) if crops else Ready[list[float]]([])
        )
        face_values: list[float] = clock.wait(judging)
        crop_logits = keyed(keys, face_values)
        synthetic_logits: dict[int, float] = {}
        if synthesising is not None:
            synthetic_values: list[float] = clock.wait(synthesising)
            synthetic_logits = keyed([f.index for f in frames], synthetic_values)
        maps: list[Heatmap] = []
        if options.heatmaps and crop_logits:
            by_key = dict(zip(keys, crops, strict=True))
            maps = clock.wait(
                clock.start(
                    "heatmaps",
                    lambda: calls.heatmaps(faces, by_key, crop_logits, settings.fusion.heatmap_faces),
                )
            )
        report_provenance = marked(clock.wait(provenance), watermark)
    tell(PROGRESS["report"], {"stage": "report"})
    result = outputs(
        prepared, faces, crop_logits, synthetic_logits, report_provenance, spec, maps, clock.timings, (check,)
    )
    with timed(result.timings, "known_media"):
        result.hashes = perceptual_hashes(prepared.info.kind, images)
        result.known_match = known.match(result.hashes) if known is not None else None
    result.timings["total"] = round(time.perf_counter() - began, 4)  # stages overlap: not their sum
    return result


def run(
    calls: StageCalls,
    assembler: ReportAssembler,
    spec: InputSpec,
    settings: Settings,
    data: bytes,
    name: str | None,
    options: Options,
    progress: Progress | None = None,
    known: KnownMedia | None = None,
) -> Report:
    """Analyse one medium through ``calls``: :func:`collect`, then the report."""
    synthetic = assembler.synthetic_model is not None
    return assembler.build(collect(calls, spec, settings, data, name, options, progress, synthetic, known))
