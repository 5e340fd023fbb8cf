"""Bench section ``large_images``: peak memory and time of one fresh ``trueframe analyze`` per photo.

A JPEG is decoded at a reduced DCT scale, every other format at full size before it is scaled to
``limits.frame_max_side``, so ``limits.max_pixels`` (120 M) is also a memory bound: this section
measures what one analysis holds for a 102 M-pixel WebP and JPEG (a shared face photo enlarged to a
medium-format frame), a camera's own 51 M-pixel HEIC when ``../shared/data`` is there, and a small
PNG for the baseline (interpreter, imports and models). Each file runs in its own process, whose
peak RSS is its address space's high-water mark.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from detector.settings import Settings
from scripts.bench.media import face_photos
from scripts.bench.sections import Row

CAMERA_HEIC = Path("..") / "shared" / "data" / "c2pa" / "no_manifest" / "c2pa-rs__sample1.heic"
MEDIUM_FORMAT = (11648, 8736)  # 101.8 M pixels, a 102 MP frame


def high_water_mb(pid: int) -> float | None:
    """``VmHWM`` of ``pid`` in MB (None once it is gone): the peak RSS of its own address space."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return None if kb is None else kb / 1024.0


def analyse_once(path: Path, out: Path) -> tuple[float, float, dict[str, object]]:
    """Wall seconds, peak RSS in MB and the JSON report (or error) of one fresh analysis of ``path``.

    The peak is ``VmHWM``, polled until the process ends: ``wait4``'s ``ru_maxrss`` would carry
    the bench process's own size across the fork and exec, and the bench holds the big images."""
    start = time.perf_counter()
    peak = 0.0
    with open(out, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "serving.cli", "analyze", "--json", str(path)],
            stdout=fh,
            stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None:
            peak = max(peak, high_water_mb(proc.pid) or 0.0)
            time.sleep(0.02)
    report: dict[str, object] = json.loads(out.read_text().splitlines()[0])
    return time.perf_counter() - start, peak, report


def bench_large_images(tmp: Path, settings: Settings) -> list[Row]:
    """Peak RSS, wall time and decode time of one analysis per large photo (module docstring)."""
    from PIL import Image

    folder = tmp / "large"
    folder.mkdir()
    photo = Image.fromarray(face_photos(1)[0])
    files = {"0.7 M-pixel PNG (baseline)": folder / "small.png"}
    photo.resize((1024, 683), Image.Resampling.BICUBIC).save(files["0.7 M-pixel PNG (baseline)"])
    big = photo.resize(MEDIUM_FORMAT, Image.Resampling.BICUBIC)
    for fmt, quality in (("webp", 90), ("jpeg", 92)):
        files[f"102 M-pixel {fmt.upper()}"] = folder / f"big.{fmt}"
        big.save(files[f"102 M-pixel {fmt.upper()}"], quality=quality)
    del big
    if CAMERA_HEIC.is_file():
        files["camera's 51 M-pixel HEIC"] = CAMERA_HEIC
    rows: list[Row] = []
    for case, path in files.items():
        wall, peak_mb, report = analyse_once(path, folder / "report.jsonl")
        timings = report.get("timings")
        if isinstance(timings, dict):
            decode = f"decode {timings['frames']:.1f} s"
        else:
            decode = f"error {report.get('error')}"
        size = f"{path.stat().st_size / 1e6:.1f} MB file"
        result = f"peak RSS {peak_mb:.0f} MB; {wall:.1f} s in all, {decode}; {size}"
        rows.append(("large_images", case, result))
    return rows
