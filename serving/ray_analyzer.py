"""The :class:`~serving.analyzer.Analyzer` of the Ray Serve app: the stages called through handles.

Order (the in-process pipeline's): load and sample frames -> (provenance, in parallel with) faces ->
face model on the crops and synthetic model on the frames -> :class:`detector.assemble.ReportAssembler`.
Each frame and each crop is its own call, so the deployments' ``@serve.batch`` queues gather the
frames of this video and of every concurrent request into one forward pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from ray.exceptions import RayTaskError

from detector.errors import TrueframeError
from detector.settings import Settings
from serving.analyzer import AnalyzeOptions, ProgressCallback, model_versions_of

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

    from detector.assemble import ReportAssembler
    from detector.faces import FaceDetection
    from detector.models.base import InputSpec
    from detector.report import Heatmap, Report
    from detector.sampling import Frame

T = TypeVar("T")

# Where each stage starts on the job's 0..1 progress scale.
PROGRESS = {"media": 0.02, "faces": 0.15, "models": 0.65, "report": 0.95}
FACE_PROGRESS_STEPS = 4  # progress updates while the faces of a video are found


@dataclass(frozen=True)
class StageHandles:
    """Handles of the stage deployments (``synthetic_model`` is None when none is configured)."""

    media: DeploymentHandle
    provenance: DeploymentHandle
    faces: DeploymentHandle
    face_model: DeploymentHandle
    synthetic_model: DeploymentHandle | None = None


async def unwrap(call: Awaitable[T]) -> T:
    """Await a deployment call; a typed error raised in a replica is re-raised as itself."""
    try:
        return await call
    except RayTaskError as exc:
        if isinstance(exc.cause, TrueframeError):
            raise exc.cause from None
        raise


class RayAnalyzer:
    """Analyses uploaded bytes by calling the stage deployments; builds the same report as in-process."""

    def __init__(self, settings: Settings, handles: StageHandles) -> None:
        self.settings = settings
        self.handles = handles
        self._assembler: ReportAssembler | None = None
        self._spec: InputSpec | None = None
        self._versions: str | None = None

    def _report_tools(self) -> tuple[ReportAssembler, InputSpec]:
        """Calibrators, fusion parameters and the face crop spec, read from the manifest once."""
        if self._assembler is None or self._spec is None:
            from detector.assemble import ReportAssembler
            from detector.models.registry import get_entry

            models = self.settings.models
            face = (models.face_model, get_entry(models.face_model))
            synth = None
            if models.synthetic_model and self.handles.synthetic_model is not None:
                synth = (models.synthetic_model, get_entry(models.synthetic_model))
            self._assembler = ReportAssembler(self.settings, face, synth)
            self._spec = face[1].input.to_spec()
        return self._assembler, self._spec

    async def analyze(
        self,
        data: bytes,
        name: str | None,
        options: AnalyzeOptions,
        progress: ProgressCallback | None = None,
    ) -> Report:
        """Run every stage through its deployment; typed errors for input that cannot be analysed."""
        from detector.assemble import StageOutputs, face_crops
        from detector.faces import FaceResult, link_tracks

        assembler, spec = self._report_tools()
        timings: dict[str, float] = {}
        h = self.handles
        await _report(progress, PROGRESS["media"], {"stage": "media"})
        info, sample, stage_timings = await unwrap(h.media.prepare.remote(data, name, options.frames))
        timings.update(stage_timings)
        provenance_task = asyncio.ensure_future(
            _timed(unwrap(h.provenance.read.remote(data, info.mime, name)))
        )
        try:
            await _report(
                progress, PROGRESS["faces"], {"stage": "faces", "frames_sampled": len(sample.frames)}
            )
            start = time.perf_counter()
            per_frame = await self._detect(sample.frames, progress)
            fs = self.settings.faces
            faces = FaceResult(per_frame, link_tracks(per_frame, fs.track_iou, fs.track_center_dist))
            timings["faces"] = _since(start)
            await _report(
                progress,
                PROGRESS["models"],
                {"stage": "models", "faces_found": faces.n_faces, "face_tracks": len(faces.tracks)},
            )
            start = time.perf_counter()
            keys, crops = face_crops(sample.frames, faces, spec, fs.margin)
            crop_logits = dict(
                zip(keys, await _gather(h.face_model.predict.remote(c) for c in crops), strict=True)
            )
            timings["face_model"] = _since(start)
            synthetic_logits: dict[int, float] = {}
            if assembler.synthetic_model is not None and h.synthetic_model is not None:
                start = time.perf_counter()
                frame_logits = await _gather(h.synthetic_model.predict.remote(f.image) for f in sample.frames)
                synthetic_logits = {f.index: v for f, v in zip(sample.frames, frame_logits, strict=True)}
                timings["synthetic_model"] = _since(start)
            maps: list[Heatmap] = []
            if options.heatmaps and crop_logits:
                start = time.perf_counter()
                limit = self.settings.fusion.heatmap_faces
                by_key = dict(zip(keys, crops, strict=True))
                maps = await unwrap(h.face_model.heatmaps.remote(faces, by_key, crop_logits, limit))
                timings["heatmaps"] = _since(start)
            provenance, timings["provenance"] = await provenance_task
        finally:
            if not provenance_task.done():
                provenance_task.cancel()
        await _report(progress, PROGRESS["report"], {"stage": "report"})
        outputs = StageOutputs(
            media=info,
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

    async def _detect(
        self, frames: list[Frame], progress: ProgressCallback | None
    ) -> list[list[FaceDetection]]:
        """Faces per frame, one batched call per frame; detections get their frame's index."""
        calls = [asyncio.ensure_future(unwrap(self.handles.faces.detect.remote(f.image))) for f in frames]
        step = max(1, len(calls) // FACE_PROGRESS_STEPS)
        span = PROGRESS["models"] - PROGRESS["faces"]
        try:
            for done, finished in enumerate(asyncio.as_completed(calls), start=1):
                await finished
                if progress is not None and done % step == 0 and done < len(calls):
                    fraction = PROGRESS["faces"] + span * done / len(calls)
                    await progress(
                        fraction, {"stage": "faces", "frames_done": done, "frames_sampled": len(calls)}
                    )
        except BaseException:
            for call in calls:
                call.cancel()
            raise
        return [
            [replace(det, frame_index=frame.index) for det in call.result()]
            for frame, call in zip(frames, calls, strict=True)
        ]

    async def ready(self) -> bool:
        """True once MTCNN and every model have loaded in their replicas (weights present, verified)."""
        h = self.handles
        probes: list[Awaitable[Any]] = [h.faces.ready.remote(), h.face_model.describe.remote()]
        if h.synthetic_model is not None and self.settings.models.synthetic_model:
            probes.append(h.synthetic_model.describe.remote())
        try:
            await asyncio.gather(*(unwrap(p) for p in probes))
        except TrueframeError:
            return False
        return True

    def model_versions(self) -> str:
        if self._versions is None:
            self._versions = model_versions_of(self.settings)
        return self._versions


async def _report(progress: ProgressCallback | None, fraction: float, partial: dict[str, Any]) -> None:
    if progress is not None:
        await progress(fraction, partial)


async def _gather(calls: Iterable[Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*(unwrap(c) for c in calls)))


async def _timed(call: Awaitable[T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = await call
    return result, _since(start)


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 4)
