"""What the HTTP layer calls to analyse bytes: the :class:`Analyzer` protocol and its in-process form.

The FastAPI app (:mod:`serving.api`) only knows :class:`Analyzer`; Ray Serve supplies one that calls
its deployments, tests and ``trueframe serve --no-ray`` use :class:`InProcessAnalyzer`, which runs
:class:`detector.pipeline.Pipeline` in a worker thread so the event loop stays free.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.from_thread
import anyio.to_thread

from detector.errors import ModelError
from detector.settings import Settings

if TYPE_CHECKING:
    from detector.pipeline import Pipeline
    from detector.report import Report

ProgressCallback = Callable[[float, dict[str, Any]], Awaitable[None]]
"""``(fraction 0..1, partial results)``, e.g. ``(0.4, {"stage": "faces", "frames_sampled": 8})``."""


@dataclass(frozen=True)
class AnalyzeOptions:
    """Per-request choices that change the report (and so are part of the result-cache key)."""

    frames: int | None = None
    heatmaps: bool = False

    def cache_key(self) -> str:
        """A stable string of these options for the result cache."""
        return f"frames={self.frames};heatmaps={int(self.heatmaps)}"


class Analyzer(Protocol):
    """Anything that turns uploaded bytes into a :class:`~detector.report.Report`."""

    async def analyze(
        self,
        data: bytes,
        name: str | None,
        options: AnalyzeOptions,
        progress: ProgressCallback | None = None,
    ) -> Report: ...

    async def ready(self) -> bool: ...

    def model_versions(self) -> str: ...


def model_versions_of(settings: Settings) -> str:
    """Model names and weight sha256s from the manifest, plus the report schema: the cache's key part."""
    from detector.models.registry import get_entry
    from detector.report import SCHEMA_VERSION

    parts = [f"schema={SCHEMA_VERSION}"]
    for name in (settings.models.face_model, settings.models.synthetic_model):
        if name:
            parts.append(f"{name}={get_entry(name).sha256}")
    if settings.fusion.fusion_file is not None:
        parts.append(f"fusion={settings.fusion.fusion_file}")
    return ";".join(parts)


class InProcessAnalyzer:
    """One :class:`Pipeline` shared by every request, each analysis in an anyio worker thread."""

    def __init__(self, settings: Settings, pipeline: Pipeline | None = None) -> None:
        self.settings = settings
        self._pipeline = pipeline
        self._lock = threading.Lock()
        self._versions: str | None = None
        self._local = threading.local()

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline, built on first use (imports torch and the detectors)."""
        with self._lock:
            if self._pipeline is None:
                from detector.pipeline import Pipeline

                self._pipeline = Pipeline(self.settings)
                _observe_stages(self._pipeline, self._local)
            return self._pipeline

    async def analyze(
        self,
        data: bytes,
        name: str | None,
        options: AnalyzeOptions,
        progress: ProgressCallback | None = None,
    ) -> Report:
        """Analyse in a worker thread; ``progress`` hears about each finished stage."""
        return await anyio.to_thread.run_sync(self._analyze_sync, data, name, options, progress)

    def _analyze_sync(
        self, data: bytes, name: str | None, options: AnalyzeOptions, progress: ProgressCallback | None
    ) -> Report:
        pipeline = self.pipeline
        self._local.progress = progress
        try:
            return pipeline.analyze(data, name=name, frames=options.frames, heatmaps=options.heatmaps)
        finally:
            self._local.progress = None

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

    def model_versions(self) -> str:
        if self._versions is None:
            self._versions = model_versions_of(self.settings)
        return self._versions


class _Observed:
    """Delegates to a pipeline stage and reports progress after ``method`` returns."""

    def __init__(
        self,
        inner: Any,
        method: str,
        local: threading.local,
        fraction: float,
        partial: Callable[[Any], dict[str, Any]],
    ) -> None:
        self._inner, self._method, self._local = inner, method, local
        self._fraction, self._partial = fraction, partial

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if attr != self._method:
            return value

        def observed(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            callback: ProgressCallback | None = getattr(self._local, "progress", None)
            if callback is not None:
                partial = self._partial(result)

                async def report() -> None:
                    await callback(self._fraction, partial)

                anyio.from_thread.run(report)
            return result

        return observed


def _observe_stages(pipeline: Pipeline, local: threading.local) -> None:
    """Report progress after frame sampling and face extraction, whichever pipeline thread runs."""
    pipeline.sampler = _Observed(  # type: ignore[assignment]
        pipeline.sampler,
        "sample",
        local,
        0.3,
        lambda sample: {"stage": "faces", "frames_sampled": len(sample.frames)},
    )
    pipeline.faces = _Observed(  # type: ignore[assignment]
        pipeline.faces,
        "extract",
        local,
        0.7,
        lambda faces: {
            "stage": "models",
            "faces_found": faces.n_faces,
            "face_tracks": len(faces.tracks),
        },
    )
