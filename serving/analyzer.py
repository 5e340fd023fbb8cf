"""What the HTTP layer calls to analyse bytes: the :class:`Analyzer` protocol and its in-process form.

The FastAPI app (:mod:`serving.http.app`) only knows :class:`Analyzer`. Ray Serve supplies one that
places the stages on its deployments (:mod:`serving.ray.analyzer`); tests and ``trueframe serve
--no-ray`` use :class:`InProcessAnalyzer`. Both run :func:`detector.stages.run` in a worker thread,
so the event loop stays free, and hear its progress through :func:`bridge`.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.from_thread
import anyio.to_thread

from detector.errors import ModelError
from detector.settings import Settings
from detector.stages import Options, Progress

if TYPE_CHECKING:
    from detector.pipeline import Pipeline
    from detector.provenance.pdq import KnownMedia
    from detector.report.schema import Report

ProgressCallback = Callable[[float, dict[str, Any]], Awaitable[None]]
"""``(fraction 0..1, partial results)``, awaited on the event loop (the job store records it)."""


class Analyzer(Protocol):
    """Anything that turns uploaded bytes into a :class:`~detector.report.schema.Report`."""

    settings: Settings

    async def analyze(
        self, data: bytes, name: str | None, options: Options, progress: ProgressCallback | None = None
    ) -> Report: ...

    async def ready(self) -> bool: ...


def bridge(progress: ProgressCallback | None) -> Progress | None:
    """A synchronous progress callback for a worker thread that awaits ``progress`` on the event loop."""
    if progress is None:
        return None

    async def report(fraction: float, partial: dict[str, Any]) -> None:
        await progress(fraction, partial)

    def tell(fraction: float, partial: dict[str, Any]) -> None:
        anyio.from_thread.run(report, fraction, partial)

    return tell


class InProcessAnalyzer:
    """One :class:`Pipeline` shared by every request, each analysis in an anyio worker thread."""

    def __init__(
        self, settings: Settings, pipeline: Pipeline | None = None, known: KnownMedia | None = None
    ) -> None:
        self.settings = settings
        self.known = known  # the service's reviewed-media hash lists, when it has them
        self._pipeline = pipeline
        self._lock = threading.Lock()

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline, built on first use (imports torch and the detectors)."""
        with self._lock:
            if self._pipeline is None:
                from detector.pipeline import Pipeline

                self._pipeline = Pipeline(self.settings)
            return self._pipeline

    async def analyze(
        self, data: bytes, name: str | None, options: Options, progress: ProgressCallback | None = None
    ) -> Report:
        """Analyse in a worker thread; ``progress`` hears about each stage as it starts."""
        tell = bridge(progress)
        return await anyio.to_thread.run_sync(self._analyze, data, name, options, tell)

    def _analyze(self, data: bytes, name: str | None, options: Options, tell: Progress | None) -> Report:
        from detector.runtime import release_memory

        try:
            report = self.pipeline.analyze(data, name, options.frames, options.heatmaps, tell, self.known)
        except BaseException:
            release_memory(collect=True)  # the traceback may hold the decode in a reference cycle
            raise
        release_memory()  # a large decode's heap goes back to the system after every analysis
        return report

    async def ready(self) -> bool:
        """True once the models load (weights present and verified) and the fusion parameters read."""
        try:
            await anyio.to_thread.run_sync(self._load)
        except ModelError:
            return False
        return True

    def _load(self) -> None:
        pipeline = self.pipeline
        _ = pipeline.face_model, pipeline.synthetic_model, pipeline.assembler
