"""Benchmarks (not tests): writes a markdown table of the figures the issues ask for.

    python -m scripts.bench [--only sampling,faces,models,provenance] [--out runs/bench.md]

Media is generated into a temporary folder; MesoNet needs imported weights (see README).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from detector.settings import FaceSettings, Settings, get_settings

Row = tuple[str, str, str]


def timeit(fn: Callable[[], object], repeat: int = 3) -> float:
    """Median wall time of ``repeat`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_sampling(tmp: Path, settings: Settings) -> list[Row]:
    """Seek-sampling 32 frames vs decoding every frame of a 30 s 720p clip."""
    import av

    from detector.media.loader import MediaLoader
    from detector.media.sampling import FrameSampler
    from tests import mediagen

    path = tmp / "720p30s.mp4"
    n = 30 * 25
    frames = [mediagen.face_frame(i, n, (1280, 720), face_side=400) for i in range(0, n)]
    mediagen.write_clip(path, frames, fps=25)
    media = MediaLoader().load(path)
    sampler = FrameSampler()

    def decode_all() -> None:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frame.to_ndarray(format="rgb24")

    seek = timeit(lambda: sampler.sample(media, 32), repeat=3)
    full = timeit(decode_all, repeat=1)
    return [
        ("sampling", "seek 32 frames, 30 s 720p H.264", f"{seek:.3f} s"),
        ("sampling", "decode all 750 frames, same clip", f"{full:.3f} s ({full / seek:.1f}x slower)"),
    ]


def bench_faces(tmp: Path, settings: Settings) -> list[Row]:
    """MTCNN frames/s at 480p, 720p, 1080p with and without downscaling."""
    from detector.faces.extract import FaceExtractor
    from tests import mediagen

    rows: list[Row] = []
    batch = 8
    for label, size in [("480p", (854, 480)), ("720p", (1280, 720)), ("1080p", (1920, 1080))]:
        images = [mediagen.face_frame(i, batch, size) for i in range(batch)]
        for downscale in (True, False):
            longest = 640 if downscale else max(size)
            extractor = FaceExtractor(FaceSettings(detect_longest_side=longest))
            seconds = timeit(partial(extractor.detect, images), repeat=2)
            note = "downscaled to 640" if downscale else "full resolution"
            rows.append(("faces", f"MTCNN {label}, batch {batch}, {note}", f"{batch / seconds:.1f} frames/s"))
    return rows


def bench_models(tmp: Path, settings: Settings) -> list[Row]:
    """Face-model crops/s at batch 1, 8, 32."""
    from detector.models import create_model

    model = create_model(settings.models.face_model, weights_dir=settings.models.weights_dir)
    h, w = model.spec.size
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    for batch in (1, 8, 32):
        crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(batch)]
        seconds = timeit(partial(model.predict, crops), repeat=5)
        rows.append(("models", f"{model.name} batch {batch}", f"{batch / seconds:.1f} crops/s"))
    return rows


def bench_provenance(tmp: Path, settings: Settings) -> list[Row]:
    """Provenance time vs whole analysis: 1080p JPEG with and without a manifest, 10 s MP4."""
    from detector.pipeline import Pipeline
    from tests import c2pa_signing, mediagen

    pipeline = Pipeline(settings)
    frame = mediagen.face_frame(0, 1, (1920, 1080))
    chain = c2pa_signing.make_chain()
    plain = mediagen.write_image(tmp / "plain.jpg", frame, "jpeg", quality=90)
    signed = tmp / "signed.jpg"
    signed.write_bytes(c2pa_signing.sign_media(chain, plain.read_bytes(), "image/jpeg"))
    clip = mediagen.write_face_clip(tmp / "clip.mp4", n_frames=250, fps=25, size=(640, 360))
    signed_clip = tmp / "signed.mp4"
    signed_clip.write_bytes(c2pa_signing.sign_media(chain, clip.read_bytes(), "video/mp4"))
    rows: list[Row] = []
    for label, path in [
        ("1080p JPEG, no manifest", plain),
        ("1080p JPEG, signed manifest", signed),
        ("10 s MP4, no manifest", clip),
        ("10 s MP4, signed manifest", signed_clip),
    ]:
        pipeline.analyze(path)
        report = pipeline.analyze(path)
        prov = report.timings["provenance"]
        total = report.timings["total"]
        rows.append(
            (
                "provenance",
                label,
                f"{prov * 1000:.1f} ms of {total * 1000:.0f} ms ({100 * prov / total:.1f}%)",
            )
        )
    return rows


def bench_scan(tmp: Path, settings: Settings) -> list[Row]:
    """Batch scan (Ray Data) vs the in-process pipeline in a loop: items/s on the same folder.

    Sizes: ``BENCH_SCAN_SIZE=images,videos`` (default ``200,20``; e.g. ``40,4`` for a quick run).
    Both timings include their start-up (Ray and actor pools; pipeline and model loading).
    """
    import os

    from detector.pipeline import Pipeline
    from serving.scan.output import ResultStore
    from serving.scan.run import scan_items
    from serving.scan.source import list_source
    from tests import mediagen

    n_images, n_videos = (int(v) for v in os.environ.get("BENCH_SCAN_SIZE", "200,20").split(","))
    folder = tmp / "scan"
    folder.mkdir()
    photo = mediagen.face_photo()
    for i in range(n_images):  # distinct contents (a scan analyses each content once)
        image = np.ascontiguousarray(np.roll(photo, 3 * i, axis=1))
        mediagen.write_image(folder / f"img{i:04d}.jpg", image, "jpeg", quality=90)
    for i in range(n_videos):
        mediagen.write_face_clip(folder / f"clip{i:03d}.mp4", n_frames=50 + i, fps=25, size=(480, 360))
    items = list(list_source(str(folder)))
    frames = 8
    start = time.perf_counter()
    scan_items(items, ResultStore(tmp / "scan.jsonl"), settings, frames=frames)
    scan_s = time.perf_counter() - start
    start = time.perf_counter()
    pipeline = Pipeline(settings)
    for item in items:
        pipeline.analyze(item.path, frames=frames)
    loop_s = time.perf_counter() - start
    what = f"{n_images} images + {n_videos} 2 s videos, {frames} frames, {os.cpu_count()} cores"
    return [
        ("scan", f"trueframe scan (Ray Data), {what}", f"{len(items) / scan_s:.2f} items/s ({scan_s:.0f} s)"),
        ("scan", f"Pipeline.analyze loop, {what}", f"{len(items) / loop_s:.2f} items/s ({loop_s:.0f} s)"),
    ]


def _distinct_jpegs(count: int) -> list[bytes]:
    """``count`` different face JPEGs (the service caches by content, so none may repeat)."""
    import io

    from PIL import Image

    from tests import mediagen

    photo = mediagen.face_photo()
    out = []
    for i in range(count):
        buf = io.BytesIO()
        Image.fromarray(np.roll(photo, i, axis=1)).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _load(
    call: Callable[[bytes], object], images: list[bytes], concurrency: int
) -> tuple[float, list[float]]:
    """Run ``call`` on every image with ``concurrency`` threads; (wall seconds, per-call latencies)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(data: bytes) -> float:
        start = time.perf_counter()
        call(data)
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = list(pool.map(one, images))
    return time.perf_counter() - start, latencies


def bench_http(tmp: Path, settings: Settings) -> list[Row]:
    """Images/s and p50/p95 latency over loopback to the Serve app vs the in-process pipeline."""
    import httpx

    from detector.pipeline import Pipeline
    from serving.ray.app import load_config, run_service, stop_service
    from serving.ray.runtime import init_ray

    service_settings = settings.model_copy(update={"data_dir": tmp / "data"})
    pipeline = Pipeline(service_settings)
    init_ray()
    run_service(service_settings, load_config(), "127.0.0.1", 8765)
    rows: list[Row] = []
    try:
        with httpx.Client(base_url="http://127.0.0.1:8765", timeout=300) as client:
            while client.get("/readyz").status_code != 200:
                time.sleep(0.5)

            def over_http(data: bytes) -> None:
                answer = client.post("/v1/analyze", content=data, params={"name": "b.jpg"})
                answer.raise_for_status()

            over_http(_distinct_jpegs(1)[0])
            pipeline.analyze(_distinct_jpegs(1)[0])
            offset = 1
            for concurrency in (1, 4, 16):
                count = max(16, 2 * concurrency)
                images = _distinct_jpegs(offset + 2 * count)[offset:]
                offset += 2 * count
                for label, call, batch in (
                    ("HTTP (Serve)", over_http, images[:count]),
                    ("in-process", pipeline.analyze, images[count:]),
                ):
                    wall, lat = _load(call, batch, concurrency)
                    p50, p95 = np.percentile(lat, [50, 95])
                    result = f"{count / wall:.2f} images/s, p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
                    rows.append(("http", f"{label}, concurrency {concurrency}, {count} images", result))
    finally:
        stop_service()
    return rows


SECTIONS: dict[str, Callable[[Path, Settings], list[Row]]] = {
    "sampling": bench_sampling,
    "faces": bench_faces,
    "models": bench_models,
    "provenance": bench_provenance,
    "http": bench_http,
    "scan": bench_scan,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--out", type=Path, default=Path("runs/bench.md"))
    args = parser.parse_args(argv)
    settings = get_settings()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for section in args.only.split(","):
            if section not in SECTIONS:
                parser.error(f"unknown section {section!r}; choose from {', '.join(SECTIONS)}")
            rows += SECTIONS[section](tmp, settings)
    machine = f"{platform.machine()}, {torch.get_num_threads()} torch threads, {platform.python_version()}"
    table = [f"Machine: {machine}", "", "| section | case | result |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(table) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
