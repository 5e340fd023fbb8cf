"""The ``gpu`` bench section: the CUDA path on a lent GPU (the fast-path issue's item 6).

On the first CUDA device: how far float16 moves each shipped classifier's probabilities there (the
manifest's ``half_precision`` decides what ``runtime.precision = auto`` runs in float16), each
classifier's crops/s per precision and batch, MTCNN frames/s on 720p frames against this machine's
CPU, and end to end (``Pipeline.analyze``, every stage) videos/s and face crops/s on distinct 10 s
720p clips at 32 frames: one at a time, from worker threads (one pipeline each, as the local scan
does), and the same clips on the CPU. Ray Serve's batching is not measured here (no Ray in process).
:func:`measure` takes the device, so the same code runs on a CPU in the tests.
"""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detector.errors import InvalidRequest
from detector.settings import FaceSettings, Settings
from scripts.bench.media import ClipSpec, _view, distinct_jpegs, face_photos, write_clip
from scripts.bench.sections import Row, timeit

if TYPE_CHECKING:
    from detector.report.schema import Report


def require_cuda() -> None:
    """InvalidRequest unless torch sees a CUDA device (checked before any section runs)."""
    import torch

    if not torch.cuda.is_available():
        raise InvalidRequest("section gpu needs a CUDA device, and torch sees none")


def bench_gpu(tmp: Path, settings: Settings) -> list[Row]:
    """Every figure of this module on ``cuda``: 8 clips on the GPU, 4 on the CPU, 4 threads."""
    require_cuda()
    return measure(tmp, settings, "cuda", clips=8, cpu_clips=4, threads=4)


def measure(
    tmp: Path, settings: Settings, device: str, clips: int, cpu_clips: int, threads: int
) -> list[Row]:
    """The section's rows on ``device`` (``cuda`` in the bench; the tests pass ``cpu``)."""
    import torch

    where = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
    rows: list[Row] = [("gpu", "device", f"{where}, torch {torch.__version__}, CUDA {torch.version.cuda}")]
    images = [_decoded(data) for data in distinct_jpegs(48)]
    rows += _models(settings, device, images)
    rows += _mtcnn(device)
    rows += _end_to_end(tmp, settings, device, clips, cpu_clips, threads)
    return rows


def _decoded(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def _probability(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))


def _models(
    settings: Settings, device: str, images: list[np.ndarray], batches: tuple[int, ...] = (32, 128)
) -> list[Row]:
    """Per shipped classifier: float16 against float32 on ``device``, ``device`` against the CPU,
    the precision ``auto`` picks, and crops/s per precision at each of ``batches``."""
    import torch

    from detector.faces.extract import FaceExtractor, crop_face
    from detector.models import create_model
    from detector.models._manifest import load_manifest
    from detector.runtime import model_dtype, select_device

    weights = settings.models.weights_dir
    manifest = load_manifest()
    rows: list[Row] = []
    names = [settings.models.face_model, settings.models.synthetic_model]
    for name in [n for n in names if n]:
        full = create_model(name, weights_dir=weights, device=device, dtype=torch.float32)
        half = create_model(name, weights_dir=weights, device=device, dtype=torch.float16)
        cpu = create_model(name, weights_dir=weights)
        auto = model_dtype("auto", select_device(device), manifest.models[name].half_precision)  # no 4th load
        spec = full.spec
        if name == settings.models.face_model:
            extractor = FaceExtractor(FaceSettings(), device)
            found = zip(images, extractor.detect(images), strict=True)
            margin, side = spec.crop_margin, spec.size[0]
            inputs = [crop_face(image, d.box, margin, side) for image, ds in found for d in ds]
        else:
            inputs = images
        p32 = _probability(full.predict(inputs))
        half_gap = float(np.abs(p32 - _probability(half.predict(inputs))).max())
        device_gap = float(np.abs(p32 - _probability(cpu.predict(inputs))).max())
        rows.append((
            "gpu", f"{name}: float16 vs float32 on {device}, {len(inputs)} real inputs",
            f"largest change in probability {half_gap:.4f}; {device} vs CPU in float32 {device_gap:.1e}; "
            f"precision auto runs {str(auto).removeprefix('torch.')}",
        ))  # fmt: skip
        h, w = spec.size
        rng = np.random.default_rng(0)
        for label, model in (("float32", full), ("float16", half)):
            for batch in batches:
                crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(batch)]
                seconds = timeit(partial(model.predict, crops), repeat=5)
                rows.append(("gpu", f"{name} {label} batch {batch}", f"{batch / seconds:.0f} crops/s"))
    return rows


def _mtcnn(device: str) -> list[Row]:
    """MTCNN on 32 720p frames: frames/s and faces found on ``device`` and on the CPU."""
    from detector.faces.extract import FaceExtractor

    photos = face_photos()
    frames = [_view(photos[i % len(photos)], i / 32, 1280, 720) for i in range(32)]
    rows: list[Row] = []
    for where in dict.fromkeys((device, "cpu")):
        extractor = FaceExtractor(FaceSettings(), where)
        seconds = timeit(partial(extractor.detect, frames), repeat=3)
        faces = sum(len(found) for found in extractor.detect(frames))
        result = f"{32 / seconds:.1f} frames/s, {faces} faces"
        rows.append(("gpu", f"MTCNN on {where}, 32 720p frames", result))
    return rows


def _clips(folder: Path, count: int) -> list[Path]:
    """``count`` distinct 10 s 1280x720 clips (the photos in a different order in each)."""
    photos = face_photos()
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        order = photos[i % len(photos) :] + photos[: i % len(photos)]
        frames = order if i < len(photos) else order[::-1]
        out.append(write_clip(folder / f"720p-{i}.mp4", ClipSpec(f"720p-{i}", 1280, 720, 10), frames))
    return out


def _end_to_end(
    tmp: Path, settings: Settings, device: str, clips: int, cpu_clips: int, threads: int
) -> list[Row]:
    """``Pipeline.analyze`` of every clip at 32 frames: videos/s and face crops/s, and where one
    video's time goes (the reports' stage timings; stages overlap, so they need not add up)."""
    paths = _clips(tmp / "gpu-clips", clips)
    rows: list[Row] = []
    runs = [(device, paths, 1), (device, paths, threads), ("cpu", paths[:cpu_clips], 1)]
    for where, chosen, workers in runs:
        seconds, reports = _analyse_all(settings, where, chosen, workers)
        crops = sum(f.faces for report in reports for f in report.frames)
        what = f"Pipeline.analyze on {where}, {len(chosen)} 10 s 720p clips at 32 frames, {workers} thread(s)"
        result = f"{len(chosen) / seconds:.2f} videos/s, {crops / seconds:.0f} face crops/s"
        rows.append(("gpu", what, result))
        if workers == 1:
            rows.append(("gpu", f"  stages per video on {where}, means", _stage_means(reports)))
    return rows


def _stage_means(reports: list[Report]) -> str:
    """``stage s`` for every timed stage of ``reports``, slowest first."""
    stages = {stage for report in reports for stage in report.timings}
    means = {stage: sum(r.timings.get(stage, 0.0) for r in reports) / len(reports) for stage in stages}
    slowest = sorted(means.items(), key=lambda m: -m[1])
    return ", ".join(f"{stage} {seconds:.3f} s" for stage, seconds in slowest)


def _analyse_all(
    settings: Settings, device: str, paths: list[Path], workers: int
) -> tuple[float, list[Report]]:
    """Seconds to analyse ``paths`` on ``workers`` threads (one warmed-up pipeline each), and the reports."""
    from detector.pipeline import Pipeline

    runtime = settings.runtime.model_copy(update={"device": device})
    on_device = settings.model_copy(update={"runtime": runtime})
    pipelines = [Pipeline(on_device) for _ in range(workers)]
    for pipeline in pipelines:  # loads the models and pays CUDA's first-call costs outside the clock
        pipeline.analyze(paths[0], frames=32)
    shares = [paths[i::workers] for i in range(workers)]

    def run(pipeline: Pipeline, share: list[Path]) -> list[Report]:
        return [pipeline.analyze(p, frames=32) for p in share]

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        reports = [report for done in pool.map(run, pipelines, shares) for report in done]
    return time.perf_counter() - start, reports
