"""The :class:`~serving.analyzer.Analyzer` of the Ray Serve app: the stages placed on deployments.

:func:`detector.stages.run` says the order and does the glue; :class:`RayCalls` only says where each
stage runs. It runs in a worker thread of the ingress, so a deployment call is started with
``handle.remote(...)`` and collected with the response's blocking ``result()``. Frames and crops go
one per call, so the deployments' ``@serve.batch`` queues gather the frames of this video and of
every concurrent request into one forward pass. A typed error raised in a replica is re-raised as
itself. An image is decoded and its provenance read in the ingress itself (:class:`LightStages`,
``serve.light_stages_in_ingress``): fewer hops where the work is shorter than the hop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio.to_thread
from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

from detector.errors import TrueframeError
from detector.media.frames import sources
from detector.runtime import timed
from detector.settings import Settings
from detector.stages import Options, Poll, Prepared, Ready, face_spec, run
from serving.analyzer import ProgressCallback, bridge
from serving.http.errors import ServiceUnavailable

if TYPE_CHECKING:
    import numpy as np
    from ray.serve.handle import DeploymentHandle

    from detector.faces.extract import FaceResult
    from detector.faces.tracks import FaceDetection
    from detector.provenance.pdq import KnownMedia
    from detector.provenance.types import ProvenanceReport
    from detector.report.assemble import CropKey, ReportAssembler
    from detector.report.schema import Heatmap, Report

T = TypeVar("T")
log = logging.getLogger(__name__)
DeploymentResponse = Any  # ray.serve.handle.DeploymentResponse (its stubs union in streaming responses)


RETRIES = 3
RETRY_BACKOFF_S = 0.5
LOST = (RayActorError, ActorUnavailableError)


def unwrap(call: Callable[[], DeploymentResponse], sent: DeploymentResponse | None = None) -> Any:
    """Run one deployment call to its result, retrying on another replica when one is lost.

    A typed error from the replica is raised as itself. Stages are idempotent, so a call whose
    replica died or became unreachable is sent again (bounded, with backoff); when retries run
    out the caller gets ``service_unavailable`` (503, retryable), never Ray's internal text.
    ``sent`` is a response already in flight for the first attempt.
    """
    for attempt in range(RETRIES + 1):
        response, sent = sent if sent is not None else call(), None
        try:
            return response.result()
        except RayTaskError as exc:
            if isinstance(exc.cause, TrueframeError):
                raise exc.cause from None
            if not isinstance(exc.cause, LOST):
                raise
        except LOST:
            pass
        if attempt < RETRIES:
            log.warning("a stage replica was lost; retrying (%d of %d)", attempt + 1, RETRIES)
            time.sleep(RETRY_BACKOFF_S * 2**attempt)
    raise ServiceUnavailable("a stage of the service is unavailable; retry later")


@dataclass
class Remote(Generic[T]):
    """One deployment call, sent when its result is first asked for (and again if a replica is lost):
    nothing is in flight before that, so there is nothing to cancel."""

    call: Callable[[], DeploymentResponse]

    def result(self, poll: Poll | None = None) -> T:
        value: T = unwrap(self.call)
        return value

    def cancel(self) -> None:
        return None


@dataclass
class Gathered(Generic[T]):
    """Many deployment calls (one per frame or crop), all sent at once, collected in order.

    ``poll`` runs before each is collected; when it raises (the job was deleted), or a call fails,
    the calls not collected yet are cancelled: a replica drops those still queued, so a long video
    deleted in its faces stage stops holding the replicas within about a batch.
    """

    calls: Sequence[Callable[[], DeploymentResponse]]

    def __post_init__(self) -> None:
        self.started = [call() for call in self.calls]
        self.collected = 0

    def result(self, poll: Poll | None = None) -> list[T]:
        values: list[T] = []
        try:
            for sent, call in zip(self.started, self.calls, strict=True):
                if poll is not None:
                    poll()
                values.append(unwrap(call, sent))
                self.collected += 1
        except BaseException:
            self.cancel()
            raise
        return values

    def cancel(self) -> None:
        for response in self.started[self.collected :]:
            response.cancel()
        self.collected = len(self.started)


@dataclass(frozen=True)
class StageHandles:
    """Handles of the stage deployments (``synthetic_model`` is None when none is configured)."""

    media: DeploymentHandle
    provenance: DeploymentHandle
    faces: DeploymentHandle
    face_model: DeploymentHandle
    synthetic_model: DeploymentHandle | None = None


class LightStages:
    """Decoding and provenance of *images*, run in the ingress instead of on their deployments.

    An image decodes in milliseconds, while a hop to the media deployment and back costs pickling
    the decoded frame and two actor calls; a video's decode is long and stays on the media
    deployment, where it cannot hold up the ingress. Limits and typed errors are the same code
    (:class:`MediaLoader`), so a hostile image fails here exactly as it would on the deployment.
    """

    def __init__(self, settings: Settings) -> None:
        from detector.media.loader import MediaLoader
        from detector.media.sampling import FrameSampler
        from detector.provenance.reader import ProvenanceReader

        self.loader = MediaLoader(settings.limits)
        self.sampler = FrameSampler(settings.sampling, self.loader)
        self.reader = ProvenanceReader(settings.provenance)

    @staticmethod
    def takes(data: bytes) -> bool:
        """True for bytes that sniff as an image (anything else, unknown included, goes remote)."""
        from detector.errors import UnsupportedMediaType
        from detector.media.sniff import HEAD_BYTES, sniff

        try:
            return sniff(data[:HEAD_BYTES])[0] == "image"
        except UnsupportedMediaType:
            return False  # the media deployment raises the same typed error

    def prepare(self, data: bytes, name: str | None, frames: int | None) -> Prepared:
        """Load and sample here, with the same timings keys as the deployment."""
        timings: dict[str, float] = {}
        with timed(timings, "media"):
            media = self.loader.load(data, name=name)
        with timed(timings, "frames"):
            sample = self.sampler.sample(media, frames)
        return Prepared(media.info, data, name, sample, timings)


class RayCalls:
    """:class:`detector.stages.StageCalls` on the deployments of :class:`StageHandles`.

    With ``light`` (:class:`LightStages`), an image's decoding and provenance run in the ingress.
    """

    def __init__(self, handles: StageHandles, light: LightStages | None = None) -> None:
        self.h = handles
        self.light = light

    def prepare(self, data: bytes, name: str | None, frames: int | None) -> Prepared:
        if self.light is not None and self.light.takes(data):
            return self.light.prepare(data, name, frames)
        info, sample, timings = unwrap(lambda: self.h.media.prepare.remote(data, name, frames))
        return Prepared(info, data, name, sample, timings)

    def provenance(self, data: bytes, mime: str) -> Remote[ProvenanceReport] | Ready[ProvenanceReport]:
        if self.light is not None and mime.startswith("image/"):
            return Ready(self.light.reader.read(data, mime))
        pending: Remote[ProvenanceReport] = Remote(lambda: self.h.provenance.read.remote(data, mime))
        return pending

    def detect(self, images: Sequence[np.ndarray]) -> Gathered[list[FaceDetection]]:
        # frames travel packed; the replica unpacks each as its detector reads it
        return Gathered([_bind(self.h.faces.detect, image) for image in sources(images)])

    def face_logits(self, crops: list[np.ndarray]) -> Gathered[float]:
        return Gathered([_bind(self.h.face_model.predict, crop) for crop in crops])

    def synthetic_logits(self, images: Sequence[np.ndarray]) -> Gathered[float] | Ready[list[float]]:
        if self.h.synthetic_model is None:
            return Ready([])
        return Gathered([_bind(self.h.synthetic_model.predict, image) for image in sources(images)])

    def heatmaps(
        self, faces: FaceResult, crops: dict[CropKey, np.ndarray], logits: dict[CropKey, float], limit: int
    ) -> Remote[list[Heatmap]]:
        return Remote(lambda: self.h.face_model.heatmaps.remote(faces, crops, logits, limit))


def _bind(method: Any, argument: Any) -> Callable[[], DeploymentResponse]:
    """A call of a deployment method with one argument, that can be sent again."""
    return lambda: method.remote(argument)


class RayAnalyzer:
    """Analyses uploaded bytes through the stage deployments; builds the same report as in-process."""

    def __init__(self, settings: Settings, handles: StageHandles, known: KnownMedia | None = None) -> None:
        self.settings = settings
        self.handles = handles
        self.known = known  # the service's reviewed-media hash lists, when it has them
        light = LightStages(settings) if settings.serve.light_stages_in_ingress else None
        self.calls = RayCalls(handles, light)
        self._assembler: ReportAssembler | None = None

    @property
    def assembler(self) -> ReportAssembler:
        """Calibrators and fusion parameters, read from the manifest once."""
        if self._assembler is None:
            from detector.stages import build_assembler

            self._assembler = build_assembler(self.settings)
        return self._assembler

    async def analyze(
        self, data: bytes, name: str | None, options: Options, progress: ProgressCallback | None = None
    ) -> Report:
        """Run every stage through its deployment; typed errors for input that cannot be analysed."""
        assembler, spec, tell = self.assembler, face_spec(self.settings), bridge(progress)
        return await anyio.to_thread.run_sync(
            lambda: run(self.calls, assembler, spec, self.settings, data, name, options, tell, self.known)
        )

    async def ready(self) -> bool:
        """True once MTCNN and every model have loaded in their replicas (weights present, verified)."""
        h = self.handles
        probes = [h.faces.ready.remote(), h.face_model.describe.remote()]
        if h.synthetic_model is not None and self.settings.models.synthetic_model:
            probes.append(h.synthetic_model.describe.remote())
        try:
            for probe in probes:
                await probe
        except RayTaskError as exc:
            if isinstance(exc.cause, TrueframeError):
                return False
            raise
        except TrueframeError:
            return False
        return True
