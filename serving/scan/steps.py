"""The batch scan's steps: the detector stage classes, unchanged, wrapped as ``map_batches`` callables.

Each step takes and returns a pyarrow table with an ``id`` column and a ``state`` column holding
one pickled :class:`ItemState` per item; the classes are plain Python (no Ray import), so they run
the same in a Ray actor pool and in a unit test. An item that fails keeps its typed error in its
state and passes through the later steps untouched: one bad file never stops a batch.
The report is built by :class:`detector.report.assemble.ReportAssembler`, the same code as in-process.
"""

from __future__ import annotations

import json
import logging
import pickle
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from detector.errors import InternalError, TrueframeError
from detector.media.frames import Images
from detector.media.loader import Media, MediaInfo, MediaLoader
from detector.media.sampling import FrameSample, FrameSampler
from detector.provenance.pdq import KnownMedia, perceptual_hashes
from detector.provenance.reader import ProvenanceReader
from detector.provenance.types import ProvenanceReport
from detector.runtime import timed
from detector.settings import Settings
from detector.stages import (
    Prepared,
    build_assembler,
    crop_faces,
    face_spec,
    find_faces,
    keyed,
    marked,
    outputs,
    synthetic_inputs,
    watermark_of,
)
from serving.scan.output import Row, error_row, report_row
from serving.scan.source import read_bytes

if TYPE_CHECKING:  # torch-backed modules load only in the actors that need them
    from detector.faces.extract import FaceResult
    from detector.models import Classifier
    from detector.report.assemble import StageOutputs

log = logging.getLogger(__name__)


@dataclass
class ItemState:
    """One item on its way through the steps; heavy fields are dropped once used."""

    path: str
    media: Media | None = None
    info: MediaInfo | None = None
    sample: FrameSample | None = None
    provenance: ProvenanceReport | None = None
    faces: FaceResult | None = None
    crop_logits: dict[tuple[int, int], float] = field(default_factory=dict)
    synthetic_logits: dict[int, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    error: TrueframeError | None = None


def states_table(ids: list[int], states: list[ItemState]) -> pa.Table:
    """The table form the steps pass along."""
    blobs = [pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL) for s in states]
    return pa.table({"id": pa.array(ids, pa.int64()), "state": pa.array(blobs, pa.binary())})


def _unpack(batch: pa.Table) -> tuple[list[int], list[ItemState]]:
    states = [pickle.loads(b) for b in batch.column("state").to_pylist()]  # our own step's output
    return batch.column("id").to_pylist(), states


def _guarded(state: ItemState, stage: str, work: Callable[[ItemState], None]) -> None:
    """Run one stage on one item; any failure becomes the item's typed error, never the batch's.

    Unexpected exceptions are logged with their traceback and recorded as ``internal_error`` with
    the exception type: the row says what happened and the scan goes on (a bug in one decoder
    must not cost an operator the other ten thousand items).
    """
    if state.error is not None:
        return
    try:
        with timed(state.timings, stage):
            work(state)
    except TrueframeError as exc:
        state.error = exc
    except Exception as exc:
        log.exception("stage %s failed on %s", stage, state.path)
        state.error = InternalError(f"{stage}: {type(exc).__name__}: {exc}", stage=stage)


class _Step:
    """Unpack a batch, run :meth:`process` on the items, pack it again."""

    stage = "step"

    def __call__(self, batch: pa.Table) -> pa.Table:
        ids, states = _unpack(batch)
        self.process(states)
        return states_table(ids, states)

    def process(self, states: list[ItemState]) -> None:
        for state in states:
            _guarded(state, self.stage, self.one)

    def one(self, state: ItemState) -> None:
        raise NotImplementedError


class LoadStep(_Step):
    """Read the bytes (any pyarrow filesystem), sniff, enforce limits, probe, sample frames."""

    stage = "media"

    def __init__(self, settings: Settings, frames: int | None = None) -> None:
        self.loader = MediaLoader(settings.limits)
        self.sampler = FrameSampler(settings.sampling, self.loader)
        self.frames = frames
        # Read at most one byte past the largest limit: the loader then reports media_too_large.
        self.cap = max(settings.limits.max_image_bytes, settings.limits.max_video_bytes) + 1

    def process(self, states: list[ItemState]) -> None:
        for state in states:
            _guarded(state, "media", self._load)
            _guarded(state, "frames", self._sample)

    def _load(self, state: ItemState) -> None:
        data = read_bytes(state.path, self.cap)
        state.media = self.loader.load(data, name=item_name(state.path))
        state.info = state.media.info

    def _sample(self, state: ItemState) -> None:
        assert state.media is not None
        state.sample = self.sampler.sample(state.media, self.frames)


class ProvenanceStep(_Step):
    """C2PA and metadata evidence from the bytes, and a known invisible watermark in an image's
    pixels; the bytes are dropped afterwards."""

    def __init__(self, settings: Settings) -> None:
        self.reader = ProvenanceReader(settings.provenance)

    def process(self, states: list[ItemState]) -> None:
        for state in states:
            _guarded(state, "provenance", self._read)
            _guarded(state, "watermark", self._watermark)
            state.media = None  # never ship the bytes further, even for a failed item

    def _read(self, state: ItemState) -> None:
        media = state.media
        assert media is not None  # set by LoadStep, or the item carries an error
        state.provenance = self.reader.read(media.data, media.info.mime)

    def _watermark(self, state: ItemState) -> None:
        assert state.info is not None
        assert state.sample is not None
        assert state.provenance is not None
        state.provenance = marked(state.provenance, watermark_of(state.info.kind, state.sample.frames))


def _device(settings: Settings) -> Any:
    from detector.runtime import configure_threads, select_device

    configure_threads(settings.runtime.torch_threads)
    return select_device(settings.runtime.device)


class FaceStep(_Step):
    """MTCNN faces and tracks over each item's sampled frames (GPU when the actor has one)."""

    stage = "faces"

    def __init__(self, settings: Settings) -> None:
        from detector.stages import face_extractor

        self.settings = settings.faces
        self.extractor = face_extractor(settings, _device(settings))

    def one(self, state: ItemState) -> None:
        assert state.sample is not None
        frames = state.sample.frames
        state.faces = find_faces(self.extractor.detect, frames, self.settings, self.extractor.min_face_px)


class ClassifierStep(_Step):
    """Face model on each item's face crops, synthetic-image model on its frames (one call per item)."""

    def __init__(self, settings: Settings) -> None:
        from detector.models import create_model

        self.settings = settings
        device = _device(settings)
        weights = settings.models.weights_dir
        precision = settings.runtime.precision
        self.face_model = create_model(
            settings.models.face_model, weights_dir=weights, device=device, precision=precision
        )
        name = settings.models.synthetic_model
        self.synthetic_model: Classifier | None = (
            create_model(name, weights_dir=weights, device=device, precision=precision) if name else None
        )

    def process(self, states: list[ItemState]) -> None:
        for state in states:
            _guarded(state, "face_model", self._faces)
            if self.synthetic_model is not None:
                _guarded(state, "synthetic_model", self._synthetic)

    def _faces(self, state: ItemState) -> None:
        assert state.sample is not None
        assert state.faces is not None
        spec = self.face_model.spec
        keys, crops = crop_faces(state.sample.frames, state.faces, spec, self.settings.faces.margin)
        if crops:
            state.crop_logits = keyed(keys, self.face_model.predict(crops))

    def _synthetic(self, state: ItemState) -> None:
        assert state.sample is not None
        assert self.synthetic_model is not None
        assert state.info is not None
        frames = state.sample.frames
        judged, _ = synthetic_inputs(state.info, Images(frames))  # the scope's check runs again later
        state.synthetic_logits = keyed([f.index for f in frames], self.synthetic_model.predict(judged))


class AssembleStep:
    """PDQ-hash the frames, look them up in the hash lists, then calibrate, aggregate, fuse and
    flatten each report into a result row (JSON text)."""

    def __init__(self, settings: Settings) -> None:
        self.assembler = build_assembler(settings)
        self.spec = face_spec(settings)
        from serving.known.lookup import service_known_media

        self.known: KnownMedia | None = service_known_media(settings)

    def __call__(self, batch: pa.Table) -> pa.Table:
        ids, states = _unpack(batch)
        return _results_table(ids, [self.result(state) for state in states])

    def result(self, state: ItemState) -> Row:
        """The result columns of one item (its error row when a stage failed)."""
        done: list[Row] = []
        _guarded(state, "report", lambda s: done.append(report_row(self.assembler.build(self.outputs(s)))))
        if done:
            return done[0]
        assert state.error is not None
        result = error_row(state.error)
        if state.info is not None:
            result.update(sha256=state.info.sha256, kind=state.info.kind, format=state.info.format)
            result.update(size_bytes=state.info.size_bytes)
        result["timings"] = _json_timings(state.timings)
        return result

    def outputs(self, state: ItemState) -> StageOutputs:
        assert state.info is not None
        assert state.sample is not None
        assert state.faces is not None
        prepared = Prepared(state.info, b"", item_name(state.path), state.sample, state.timings)
        result = outputs(
            prepared, state.faces, state.crop_logits, state.synthetic_logits, state.provenance, self.spec
        )
        with timed(result.timings, "known_media"):
            result.hashes = perceptual_hashes(state.info.kind, Images(state.sample.frames))
            result.known_match = self.known.match(result.hashes) if self.known is not None else None
        return result


class FusedStep:
    """Every step above in one actor, item by item: the same step classes, no frames pickled between
    them. On a cluster without GPUs the hops between per-stage actor pools cost more than they
    overlap; one item's frames are held at a time, so memory stays flat."""

    def __init__(self, settings: Settings, frames: int | None = None) -> None:
        self.steps: list[_Step] = [
            LoadStep(settings, frames),
            ProvenanceStep(settings),
            FaceStep(settings),
            ClassifierStep(settings),
        ]
        self.assemble = AssembleStep(settings)

    def __call__(self, batch: pa.Table) -> pa.Table:
        ids, states = _unpack(batch)
        return _results_table(ids, [self.analyse(state) for state in states])

    def analyse(self, state: ItemState) -> Row:
        """Every stage on one item, then its result columns (the scan's local workers call this)."""
        for step in self.steps:
            step.process([state])
        return self.assemble.result(state)


def _results_table(ids: list[int], rows: list[Row]) -> pa.Table:
    blobs = [pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL) for row in rows]
    return pa.table({"id": pa.array(ids, pa.int64()), "result": pa.array(blobs, pa.binary())})


def item_name(path: str) -> str:
    """The file name of a local path or URI (informational only: types come from the bytes)."""
    return posixpath.basename(path.replace("\\", "/").rstrip("/"))


def _json_timings(timings: dict[str, float]) -> str:
    return json.dumps(timings, sort_keys=True)
