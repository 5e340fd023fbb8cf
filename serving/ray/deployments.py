"""Ray Serve deployments that wrap the detector stage classes unchanged, one per stage.

Each deployment owns one stage object built in ``__init__`` (models load lazily on first call, like
in-process) and exposes plain async methods that the ingress calls through ``DeploymentHandle``s.
Face detection and the classifiers take ONE image per call (hence their high ``max_ongoing_requests``)
and are ``@serve.batch``-ed: the frames
of one video and of concurrent requests that queued while the replica computed are gathered into
one batch (one MTCNN or model forward pass), up to ``max_batch_size`` images; there is no batch wait
(``batch_wait_timeout_s = 0``), so an idle replica starts at once. Both are tunable
through ``user_config`` (``reconfigure``); thresholds come from the settings only, so Ray and
in-process runs give the same answers. Media and provenance work runs in worker threads.

No replica imports torchvision for the defaults (face detection builds MTCNN's networks itself);
the code that does (torchvision's EfficientNets) installs its CPU shim first, in any process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from ray import serve

from detector.runtime import release_memory
from detector.settings import Settings

if TYPE_CHECKING:
    from detector.faces.extract import FaceResult
    from detector.faces.tracks import FaceDetection
    from detector.media.frames import HasImage
    from detector.media.loader import MediaInfo
    from detector.media.sampling import FrameSample
    from detector.models import Classifier
    from detector.models._manifest import ModelEntry
    from detector.provenance.types import ProvenanceReport
    from detector.report.assemble import CropKey
    from detector.report.schema import Heatmap

BATCH_KEYS = ("max_batch_size", "batch_wait_timeout_s")
BATCH_METRICS = ("trueframe_stage_batches", "trueframe_stage_batch_items")
BATCHED = frozenset({"faces", "face_model", "synthetic_model"})
"""Ray counters of the ``@serve.batch`` passes of a stage replica and of the images they held (on
each node's metrics export port as ``ray_<name>_total``, with Serve's ``deployment`` and ``replica``
tags): items over batches is the mean batch, so whether batches fill under load, on CPUs or GPUs, is
read there. Counters, not a histogram: Ray 2.60's exported histogram sums were wrong (3.5 for five
passes of at least one image each)."""


def batch_totals(exported: str, stages: frozenset[str] = BATCHED) -> dict[str, tuple[float, float]]:
    """``{deployment: (batches, images)}`` summed over replicas, from a node's Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    names = [f"ray_{name}" for name in BATCH_METRICS]
    totals = {stage: [0.0, 0.0] for stage in stages}
    for family in text_string_to_metric_families(exported):
        if family.name in names:
            for sample in family.samples:
                if sample.labels.get("deployment") in stages and sample.name.endswith("_total"):
                    totals[sample.labels["deployment"]][names.index(family.name)] += sample.value
    return {stage: (batches, images) for stage, (batches, images) in totals.items()}


def node_batch_totals(timeout_s: float = 10.0) -> dict[str, tuple[float, float]]:
    """:func:`batch_totals` as this machine's Ray node exports them now (the driver's own node, alive;
    Ray exports every few seconds, so the last passes may not be in yet)."""
    import httpx
    import ray

    here = ray.get_runtime_context().get_node_id()
    node = next(n for n in ray.nodes() if n["NodeID"] == here and n["Alive"])
    url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
    return batch_totals(httpx.get(url, timeout=timeout_s).text)


class BatchCounters:
    """The replica's two counters of :data:`BATCH_METRICS` (made when the replica starts, not on import)."""

    def __init__(self) -> None:
        from ray.serve import metrics

        batches, items = BATCH_METRICS
        self.batches = metrics.Counter(batches, description="batched forward passes of a stage replica")
        self.items = metrics.Counter(items, description="images in the batched passes of a stage replica")

    def record(self, size: int) -> None:
        """One pass of ``size`` images."""
        self.batches.inc()
        self.items.inc(size)


def _prepare_worker(settings: Settings) -> None:
    """Per-process setup of a replica: torch's thread count."""
    from detector.runtime import configure_threads

    configure_threads(settings.runtime.torch_threads)


def _apply_batch_config(config: dict[str, Any], *methods: Any) -> None:
    """Set ``max_batch_size`` / ``batch_wait_timeout_s`` of ``@serve.batch`` methods from user_config."""
    unknown = set(config) - set(BATCH_KEYS)
    if unknown:
        raise ValueError(
            f"unknown user_config keys: {', '.join(sorted(unknown))}; user_config tunes batching only, "
            "thresholds come from the TRUEFRAME_* settings"
        )
    for method in methods:
        if "max_batch_size" in config:
            method.set_max_batch_size(int(config["max_batch_size"]))
        if "batch_wait_timeout_s" in config:
            method.set_batch_wait_timeout_s(float(config["batch_wait_timeout_s"]))


@serve.deployment(name="media", max_ongoing_requests=8, ray_actor_options={"num_cpus": 0.2})
class MediaDeployment:
    """Sniffing, limits, probing (MediaLoader) and frame sampling (FrameSampler), on CPU."""

    def __init__(self, settings: Settings) -> None:
        from detector.media.loader import MediaLoader
        from detector.media.sampling import FrameSampler

        _prepare_worker(settings)
        self.loader = MediaLoader(settings.limits)
        self.sampler = FrameSampler(settings.sampling, self.loader)

    async def prepare(
        self, data: bytes, name: str | None, frames: int | None
    ) -> tuple[MediaInfo, FrameSample, dict[str, float]]:
        """Load (typed errors for hostile input) and sample frames in a worker thread, so one slow
        decode never blocks the replica's other requests; the bytes are not sent back."""
        return await asyncio.to_thread(self._prepare, data, name, frames)

    def _prepare(
        self, data: bytes, name: str | None, frames: int | None
    ) -> tuple[MediaInfo, FrameSample, dict[str, float]]:
        start = time.perf_counter()
        media = self.loader.load(data, name=name)
        loaded = time.perf_counter()
        try:
            sample = self.sampler.sample(media, frames)
        except BaseException:
            release_memory(collect=True)  # the traceback may hold the decode in a reference cycle
            raise
        release_memory()
        timings = {"media": round(loaded - start, 4), "frames": round(time.perf_counter() - loaded, 4)}
        return media.info, sample, timings


@serve.deployment(name="provenance", max_ongoing_requests=8, ray_actor_options={"num_cpus": 0.2})
class ProvenanceDeployment:
    """C2PA manifest validation and metadata hints (ProvenanceReader), on CPU."""

    def __init__(self, settings: Settings) -> None:
        from detector.provenance.reader import ProvenanceReader

        _prepare_worker(settings)
        self.reader = ProvenanceReader(settings.provenance)

    async def read(self, data: bytes, mime: str | None) -> ProvenanceReport:
        """C2PA validation and metadata hints, in a worker thread (the SDK call blocks)."""
        return await asyncio.to_thread(self.reader.read, data, mime)


@serve.deployment(name="faces", max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.4})
class FaceDeployment:
    """MTCNN face detection (FaceExtractor), batched over frames of all concurrent requests."""

    def __init__(self, settings: Settings) -> None:
        from detector.runtime import select_device
        from detector.stages import face_extractor

        _prepare_worker(settings)
        self.extractor = face_extractor(settings, select_device(settings.runtime.device))
        self.batch_counters = BatchCounters()

    def reconfigure(self, config: dict[str, Any]) -> None:
        """user_config: batch size and wait (the detector's thresholds come from the settings only)."""
        _apply_batch_config(config, self.detect)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def detect(self, images: list[HasImage | np.ndarray]) -> list[list[FaceDetection]]:
        """Faces in one frame or RGB array (``frame_index`` is 0: the caller sets the frame's own
        index); a packed frame is unpacked when the detector reads it."""
        from detector.media.frames import Images

        self.batch_counters.record(len(images))
        per_image = self.extractor.detect(Images(images))
        return per_image

    async def ready(self) -> bool:
        """Builds MTCNN so that the first request does not pay for it."""
        self.extractor.detect([np.zeros((64, 64, 3), dtype=np.uint8)])
        return True


class _ClassifierDeployment:
    """A registered classifier (``create_model(...).predict``), batched over images of all requests."""

    def __init__(self, settings: Settings, model_name: str) -> None:
        _prepare_worker(settings)
        self.settings = settings
        self.model_name = model_name
        self._model: Classifier | None = None
        self.batch_counters = BatchCounters()

    @property
    def model(self) -> Classifier:
        """The classifier, loaded (weights verified against the manifest) on first use."""
        if self._model is None:
            from detector.models import create_model
            from detector.runtime import select_device

            self._model = create_model(
                self.model_name,
                weights_dir=self.settings.models.weights_dir,
                device=select_device(self.settings.runtime.device),
                precision=self.settings.runtime.precision,
            )
        return self._model

    def _logits(self, images: Sequence[HasImage | np.ndarray]) -> list[float]:
        """One batched pass (counted in :data:`BATCH_METRICS`)."""
        from detector.media.frames import Images

        self.batch_counters.record(len(images))
        return [float(v) for v in self.model.predict(Images(images))]

    async def describe(self) -> tuple[str, ModelEntry]:
        """Name and manifest entry of the loaded model (loads it: used as the readiness probe)."""
        model = self.model
        return model.name, model.entry


@serve.deployment(name="face_model", max_ongoing_requests=512, ray_actor_options={"num_cpus": 0.3})
class FaceModelDeployment(_ClassifierDeployment):
    """The face-forgery classifier on face crops."""

    def reconfigure(self, config: dict[str, Any]) -> None:
        _apply_batch_config(config, self.predict)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def predict(self, images: list[np.ndarray]) -> list[float]:
        """Raw fake-logit of one face crop (batched per class: each class has its own queue)."""
        return self._logits(images)

    async def heatmaps(
        self, faces: FaceResult, crops: dict[CropKey, np.ndarray], logits: dict[CropKey, float], limit: int
    ) -> list[Heatmap]:
        """Grad-CAM maps of the strongest crop of the top ``limit`` tracks (not batched: rare)."""
        from detector.models._gradcam import top_crop_heatmaps

        return top_crop_heatmaps(self.model, faces, crops, logits, limit)


@serve.deployment(name="synthetic_model", max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.2})
class SyntheticModelDeployment(_ClassifierDeployment):
    """The synthetic-image classifier on whole frames."""

    def reconfigure(self, config: dict[str, Any]) -> None:
        _apply_batch_config(config, self.predict)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.0)
    async def predict(self, images: list[HasImage | np.ndarray]) -> list[float]:
        """Raw synthetic-logit of one whole frame (a packed frame or an RGB array)."""
        return self._logits(images)
