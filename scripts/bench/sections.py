"""Benchmark sections (not tests): each returns table rows of measured figures.

Media is generated into a temporary folder from the shared face photos (:mod:`.media`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detector.settings import FaceSettings, Settings
from scripts.bench.media import ClipSpec, _view, bench_clips, distinct_jpegs, face_photos, write_clip

if TYPE_CHECKING:
    from detector.faces.extract import FaceExtractor
    from detector.faces.plan import DetectionPlan

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
    """The decode plan (32 frames) vs decoding every frame, on each bench clip; frames decoded."""
    import av

    from detector.media.loader import MediaLoader
    from detector.media.sampling import FrameSampler

    rows: list[Row] = []
    loader = MediaLoader(settings.limits)
    sampler = FrameSampler(settings.sampling, loader)
    for name, path in bench_clips(tmp / "clips").items():
        media = loader.load(path)
        sample = sampler.sample(media, 32)

        def decode_all(path: Path = path) -> None:
            with av.open(str(path)) as container:
                for frame in container.decode(video=0):
                    frame.to_ndarray(format="rgb24")

        plan = timeit(partial(sampler.sample, media, 32), repeat=3)
        full = timeit(decode_all, repeat=3)  # medians of 3: this machine's speed varies between runs
        frames = media.info.frame_count
        what = f"{sample.stats.decoded} of {frames} frames decoded, {sample.stats.seeks} seeks"
        rows.append(("sampling", f"{name}: plan, 32 frames ({what})", f"{plan:.3f} s"))
        rows.append(
            ("sampling", f"{name}: decode every frame", f"{full:.3f} s ({full / plan:.1f}x the plan)")
        )
    return rows


def bench_faces(tmp: Path, settings: Settings) -> list[Row]:
    """MTCNN frames/s at 480p, 720p, 1080p with and without downscaling."""
    from detector.faces.extract import FaceExtractor

    rows: list[Row] = []
    batch = 8
    photos = face_photos()
    for label, size in [("480p", (854, 480)), ("720p", (1280, 720)), ("1080p", (1920, 1080))]:
        images = [_view(photos[i % len(photos)], i / batch, *size) for i in range(batch)]
        for downscale in (True, False):
            longest = 640 if downscale else max(size)
            extractor = FaceExtractor(FaceSettings(detect_longest_side=longest))
            seconds = timeit(partial(extractor.detect, images), repeat=2)
            note = "downscaled to 640" if downscale else "full resolution"
            rows.append(("faces", f"MTCNN {label}, batch {batch}, {note}", f"{batch / seconds:.1f} frames/s"))
    rows += _plan_rows(settings)
    from scripts.bench.faces_pass import compare

    sides = compare(32)
    theirs, ours = sides["facenet"], sides["trueframe"]
    rows.append((
        "faces", "detection pass, 32 1080p frames (copies at 640): facenet detect vs ours",
        f"facenet {theirs.seconds:.2f} s, {theirs.faces} faces, +{theirs.peak_growth_mb:.0f} MB peak RSS; "
        f"ours {ours.seconds:.2f} s, {ours.faces} faces, +{ours.peak_growth_mb:.0f} MB; "
        f"{theirs.seconds / ours.seconds:.2f}x",
    ))  # fmt: skip
    return rows


FFPP = Path("..") / "shared" / "data" / "deepfake" / "ffpp_c23"
FFPP_CLIPS = [FFPP / "original" / "519.mp4", FFPP / "Deepfakes" / "519_515.mp4"]


def _planned(images: list[np.ndarray], faces: FaceSettings, extractor: FaceExtractor) -> DetectionPlan:
    """A finished detection plan of ``images`` over ``extractor``."""
    from detector.faces.plan import DetectionPlan

    plan = DetectionPlan(images, faces, extractor.min_face_px)
    plan.run(extractor.detect)
    return plan


def _plan_rows(settings: Settings) -> list[Row]:
    """The face detection plan against a whole search of every frame, on continuous real footage
    (the shared FaceForensics++ clips, when present): time, whole searches and faces found."""
    from detector.media.loader import MediaLoader
    from detector.media.sampling import FrameSampler
    from detector.stages import face_extractor

    loader = MediaLoader(settings.limits)
    sampler = FrameSampler(settings.sampling, loader)
    extractor = face_extractor(settings, "cpu")
    rows: list[Row] = []
    for clip in (c for c in FFPP_CLIPS if c.exists()):
        images = [f.image for f in sampler.sample(loader.load(clip), 32).frames]
        found = {}
        for every in (1, 4):
            run = partial(
                _planned,
                images,
                extractor.settings.model_copy(update={"full_detect_every": every}),
                extractor,
            )
            plan = run()
            found[every] = (timeit(run, repeat=2), plan.whole_searches, sum(len(d) for d in plan.result()))
        (whole_s, _, whole_n), (plan_s, searched, plan_n) = found[1], found[4]
        rows.append((
            "faces", f"plan vs whole search, FF++ {clip.parent.name}/{clip.name} (640x480), 32 frames",
            f"whole {whole_s:.2f} s, {whole_n} faces; plan {plan_s:.2f} s ({searched} of 32 searched whole), "
            f"{plan_n} faces; {whole_s / plan_s:.2f}x",
        ))  # fmt: skip
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
    """Provenance and known-media hashing time within a whole analysis: 1080p JPEG and a 10 s clip."""
    from PIL import Image

    from detector.pipeline import Pipeline

    pipeline = Pipeline(settings)
    image = tmp / "photo.jpg"
    Image.fromarray(_view(face_photos()[0], 0.3, 1920, 1080)).save(image, quality=90)
    clip = bench_clips(tmp / "clips")["1920x1080"]
    rows: list[Row] = []
    for label, path in [("1080p JPEG", image), ("10 s 1080p clip, 32 frames", clip)]:
        pipeline.analyze(path)
        report = pipeline.analyze(path)
        total = report.timings["total"]
        for stage in ("provenance", "known_media"):
            spent = report.timings.get(stage, 0.0)
            rows.append(
                (stage, label, f"{spent * 1000:.1f} ms of {total * 1000:.0f} ms ({100 * spent / total:.1f}%)")
            )
    return rows


def scan_sizes(environ: Mapping[str, str]) -> tuple[int, int, int]:
    """Images, videos and rounds of the scan section from ``BENCH_SCAN_SIZE`` (``images,videos``,
    default ``200,20``) and ``BENCH_SCAN_ROUNDS`` (default 2); ValueError naming the variable. Read
    before any section runs, so a bad value never throws away the sections before it."""
    size = environ.get("BENCH_SCAN_SIZE", "200,20")
    parts = size.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts) or sum(int(p) for p in parts) < 1:
        raise ValueError(f"BENCH_SCAN_SIZE is images,videos (whole numbers, not both 0), not {size!r}")
    rounds = environ.get("BENCH_SCAN_ROUNDS", "2")
    if not rounds.strip().isdigit() or int(rounds) < 1:
        raise ValueError(f"BENCH_SCAN_ROUNDS is a whole number of at least 1, not {rounds!r}")
    return int(parts[0]), int(parts[1]), int(rounds)


def bench_scan(tmp: Path, settings: Settings) -> list[Row]:
    """Batch scan vs a ``Pipeline.analyze`` loop: items/s on the same folder, as a user runs them.

    Each side is one fresh ``trueframe`` process (``trueframe scan DIR``, as configured and then
    on Ray Data, against one ``trueframe analyze FILE...``, which analyses the files one after
    another), timed from launch to exit, so each pays its own start-up: interpreter, imports,
    model loading and, on Ray, Ray's. Settings come from the environment, as for any
    ``trueframe`` command.
    ``BENCH_SCAN_ROUNDS`` rounds (default 2), the order reversed every other round, each side's
    fastest kept, as in the ``peer`` section.
    Sizes: ``BENCH_SCAN_SIZE=images,videos`` (default ``200,20``; e.g. ``40,4`` for a quick run).
    """
    import hashlib
    import itertools
    import os
    import subprocess
    import sys

    n_images, n_videos, rounds = scan_sizes(os.environ)
    folder = tmp / "scan"
    folder.mkdir()
    for i, data in enumerate(distinct_jpegs(n_images)):  # distinct contents: a scan analyses each once
        (folder / f"img{i:04d}.jpg").write_bytes(data)
    photos = face_photos()
    pairs = list(itertools.permutations(range(len(photos)), 2))  # each clip a different pair in turn
    for i in range(n_videos):
        one, other = pairs[i % len(pairs)]
        spec = ClipSpec(f"c{i}", 480 + 16 * (i // len(pairs)), 360, 2)  # distinct past the pairs too
        write_clip(folder / f"clip{i:03d}.mp4", spec, [photos[one], photos[other]])
    files = sorted(str(p) for p in folder.iterdir())
    contents = {hashlib.sha256(Path(f).read_bytes()).digest() for f in files}
    assert len(contents) == len(files), "a repeated file would be analysed once by the scan only"
    frames = "8"
    cli = [sys.executable, "-m", "serving.cli"]
    scan = [*cli, "scan", str(folder), "--frames", frames, "--no-progress", "--out"]
    commands = {  # name: (command but the scan's RESULTS, extra environment)
        "scan": (scan, {}),
        "scan on Ray": (scan, {"TRUEFRAME_SCAN__EXECUTOR": "ray"}),
        "loop": ([*cli, "analyze", "--json", "--frames", frames, *files], {}),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    fastest: dict[str, tuple[float, float, Path]] = {}  # name: (seconds, launched, RESULTS)
    for turn in range(rounds):  # the order alternates: this machine's speed drifts within minutes
        order = list(commands) if turn % 2 == 0 else list(reversed(commands))
        for name in order:
            command, env = commands[name]
            out = tmp / f"{name.replace(' ', '-')}-{turn}.jsonl"  # fresh RESULTS: nothing skipped
            run = command if name == "loop" else [*command, str(out)]
            launched, start = time.time(), time.perf_counter()
            subprocess.run(run, check=True, stdout=subprocess.DEVNULL, env={**os.environ, **env})
            times[name].append(time.perf_counter() - start)
            if name not in fastest or times[name][-1] < fastest[name][0]:
                fastest[name] = (times[name][-1], launched, out)
    what = f"{n_images} images + {n_videos} 2 s videos, {frames} frames, {os.cpu_count()} cores, from launch"
    executor = os.environ.get("TRUEFRAME_SCAN__EXECUTOR", "auto")
    labels = {
        "scan": f"trueframe scan (scan.executor {executor})",
        "scan on Ray": "trueframe scan (scan.executor ray)",
        "loop": "trueframe analyze (Pipeline.analyze loop)",
    }
    rows: list[Row] = []
    for name, label in labels.items():
        each = ", ".join(f"{t:.1f}" for t in times[name])
        rows.append(("scan", f"{label}, {what}", f"{_rate(len(files), fastest[name][0])}; rounds {each} s"))
    for name in ("scan", "scan on Ray"):
        paired = ", ".join(f"{loop / t:.2f}x" for loop, t in zip(times["loop"], times[name], strict=True))
        ratio = f"{fastest['loop'][0] / fastest[name][0]:.2f}x fastest to fastest; per round {paired}"
        rows.append(("scan", f"{name} / loop", ratio))
        first, steady = _scan_timeline(fastest[name][2], fastest[name][1])
        rate = f"{steady:.1f} items/s" if steady == steady else "too few rows for a rate"  # NaN: < 11 rows
        timeline = f"{first:.0f} s from launch; {rate}"
        rows.append(("scan", f"{name} (fastest round): first row, then rows 10 to last", timeline))
    return rows


def _rate(items: int, seconds: float) -> str:
    return f"{items / seconds:.2f} items/s ({seconds:.0f} s)"


def _scan_timeline(results: Path, launched: float) -> tuple[float, float]:
    """Seconds from launch to the scan's first row, and its rate from the 10th row to the last
    (each row's ``scanned_at``, which has whole seconds: +-1 s, and +-1 s over the rate's span):
    what its start-up costs and what it does once running."""
    import json
    from datetime import datetime

    stamps = sorted(
        datetime.fromisoformat(json.loads(line)["scanned_at"]).timestamp()
        for line in results.read_text().splitlines()
    )
    tenth = min(9, len(stamps) - 1)
    span = stamps[-1] - stamps[tenth]
    return stamps[0] - launched, (len(stamps) - 1 - tenth) / span if span > 0 else float("nan")


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


def _latency(rate: float, latencies: list[float]) -> str:
    """``N images/s, p50 .. ms, p95 .. ms``."""
    p50, p95 = np.percentile(latencies, [50, 95])
    return f"{rate:.2f} images/s, p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"


def _paired(
    over_http: Callable[[bytes], object], in_process: Callable[[bytes], object], images: list[bytes]
) -> list[Row]:
    """Concurrency 1, each image both ways back to back (the order alternating), so that this
    machine's drift over a run (up to 2x within minutes) falls on both sides alike."""
    took: dict[str, list[float]] = {"HTTP (Serve)": [], "in-process": []}
    for i, data in enumerate(images):
        sides = [("HTTP (Serve)", over_http), ("in-process", in_process)]
        for label, call in sides if i % 2 == 0 else sides[::-1]:
            start = time.perf_counter()
            call(data)
            took[label].append(time.perf_counter() - start)
    rows = [
        ("http", f"{label}, concurrency 1, {len(lat)} images, paired", _latency(len(lat) / sum(lat), lat))
        for label, lat in took.items()
    ]
    http, local = np.array(took["HTTP (Serve)"]), np.array(took["in-process"])
    per_image = np.median(http / local)
    ratio = f"{np.median(http) / np.median(local):.2f}x (median of per-image ratios {per_image:.2f}x)"
    rows.append(("http", "HTTP / in-process p50, concurrency 1", ratio))
    return rows


BATCH_EXPORT_S = 12.0
"""Seconds between reads of Ray's metrics: a read is taken once two in a row agree (Ray exports
every few seconds, so a single read can miss the last passes)."""
BATCH_SETTLE_S = 120.0


def settled_batch_totals() -> dict[str, tuple[float, float]]:
    """The stage replicas' batch counters (:func:`serving.ray.deployments.node_batch_totals`) once
    Ray's export of them has caught up; the last read when they never settle within
    :data:`BATCH_SETTLE_S`."""
    from serving.ray.deployments import node_batch_totals

    deadline = time.monotonic() + BATCH_SETTLE_S
    last = node_batch_totals()
    while time.monotonic() < deadline:
        time.sleep(BATCH_EXPORT_S)
        now = node_batch_totals()
        if now == last:
            break
        last = now
    return last


def _batch_row(
    concurrency: int,
    count: int,
    before: dict[str, tuple[float, float]],
    after: dict[str, tuple[float, float]],
) -> Row:
    """The mean images per batched pass of each stage over one HTTP block (its passes only)."""
    means = []
    for stage in sorted(after):
        batches, images = (a - b for a, b in zip(after[stage], before[stage], strict=True))
        means.append(
            f"{stage} {images / batches:.2f} ({images:.0f} in {batches:.0f})" if batches else f"{stage} -"
        )
    return ("http", f"mean batch, HTTP concurrency {concurrency}, {count} images", "; ".join(means))


def bench_http(tmp: Path, settings: Settings) -> list[Row]:
    """Images/s and p50/p95 latency over loopback to the Serve app vs the in-process pipeline
    (concurrency 1 paired image by image; 4 and 16 as blocks, one side after the other)."""
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

            over_http(distinct_jpegs(1)[0])
            pipeline.analyze(distinct_jpegs(1)[0])
            rows += _paired(over_http, pipeline.analyze, distinct_jpegs(33)[1:])
            offset = 33
            for concurrency in (4, 16):
                count = max(16, 2 * concurrency)
                images = distinct_jpegs(offset + 2 * count)[offset:]
                offset += 2 * count
                before = settled_batch_totals()
                for label, call, batch in (
                    ("HTTP (Serve)", over_http, images[:count]),
                    ("in-process", pipeline.analyze, images[count:]),
                ):
                    wall, lat = _load(call, batch, concurrency)
                    result = _latency(count / wall, lat)
                    rows.append(("http", f"{label}, concurrency {concurrency}, {count} images", result))
                rows.append(_batch_row(concurrency, count, before, settled_batch_totals()))
    finally:
        stop_service()
    return rows
