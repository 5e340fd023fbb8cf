"""Benchmarks (not tests): ``python -m scripts.bench [--only a,b] [--out runs/bench.md]``.

Sections: peer (trueframe's sampling + faces side by side with the DFDC winner's method),
sampling, faces, models, provenance, scan, http, known_media (hash lookups against 100,000 hashes,
PDQ per image and per video), large_images (peak RSS of one analysis of a 102 M-pixel photo), gpu
(the CUDA path; only with ``--only``, refused without a CUDA device). Each
prints rows with the machine stated; the table goes to ``--out``. Media is generated from the
shared face photos (:mod:`.media`).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path

from detector.errors import InvalidRequest
from detector.evaluation.checks import choices, writable_dir
from detector.settings import Settings, get_settings
from scripts.bench.gpu import bench_gpu, require_cuda
from scripts.bench.known import bench_known_media
from scripts.bench.large import bench_large_images
from scripts.bench.peer import geometric_mean, side_by_side
from scripts.bench.sections import (
    Row,
    bench_faces,
    bench_http,
    bench_models,
    bench_provenance,
    bench_sampling,
    bench_scan,
    scan_sizes,
)


def bench_peer(tmp: Path, settings: Settings) -> list[Row]:
    """Sampling + faces of 32 frames: the DFDC winner's method vs trueframe, on every bench clip."""
    from detector.stages import face_spec, judged_face_side
    from scripts.bench.media import bench_clips

    clips = bench_clips(tmp / "clips")
    min_side = judged_face_side(face_spec(settings))
    results = side_by_side(list(clips.values()), min_side)
    rows: list[Row] = []
    ratios, sampling_ratios = [], []
    for i, name in enumerate(clips):
        peer, ours = results["peer"][i], results["trueframe"][i]
        peer_t, our_t = peer.sampling_s + peer.faces_s, ours.sampling_s + ours.faces_s
        ratios.append(peer_t / our_t)
        sampling_ratios.append(peer.sampling_s / ours.sampling_s)
        rows.append((
            "peer", name,
            f"peer {peer_t:.2f} s ({peer.sampling_s:.2f} + {peer.faces_s:.2f}), {peer.faces} faces; "
            f"trueframe {our_t:.2f} s ({ours.sampling_s:.2f} + {ours.faces_s:.2f}), {ours.faces} faces; "
            f"{peer_t / our_t:.2f}x",
        ))  # fmt: skip
    peer_mb, our_mb = results["peer"][0].peak_rss_mb, results["trueframe"][0].peak_rss_mb
    speed = f"{geometric_mean(ratios):.2f}x faster (sampling alone {geometric_mean(sampling_ratios):.2f}x)"
    what = f"geometric mean over {len(clips)} clips (faces >= {min_side:.0f} px counted)"
    rows.append(("peer", what, f"{speed}; peak RSS peer {peer_mb:.0f} MB, trueframe {our_mb:.0f} MB"))
    return rows


SECTIONS: dict[str, Callable[[Path, Settings], list[Row]]] = {
    "peer": bench_peer,
    "sampling": bench_sampling,
    "faces": bench_faces,
    "models": bench_models,
    "provenance": bench_provenance,
    "scan": bench_scan,
    "http": bench_http,
    "known_media": bench_known_media,
    "large_images": bench_large_images,
    "gpu": bench_gpu,
}
DEFAULT = tuple(name for name in SECTIONS if name != "gpu")
"""Sections run without ``--only``: all but ``gpu``, which needs a CUDA device."""


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections and write the table."""
    import torch

    description = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m scripts.bench", description=description)
    only = f"comma-separated: {', '.join(SECTIONS)}; default: all but gpu"
    parser.add_argument("--only", default=",".join(DEFAULT), help=only)
    parser.add_argument("--out", type=Path, default=Path("runs/bench.md"), help="(default: %(default)s)")
    args = parser.parse_args(argv)
    try:  # everything that can be refused is refused before the first section runs
        chosen = choices(args.only, tuple(SECTIONS), "--only")
        if "scan" in chosen:
            scan_sizes(os.environ)
        if "gpu" in chosen:
            require_cuda()
        if args.out.is_dir():
            raise InvalidRequest(f"--out {args.out} is a folder: give a file name")
        writable_dir(args.out.resolve().parent, "--out's folder")
    except (InvalidRequest, ValueError) as exc:
        parser.error(str(exc))
    settings = get_settings()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        for section in chosen:
            rows += SECTIONS[section](Path(tmp_name), settings)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )
    table = [f"Machine: {machine}", "", "| section | case | result |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(table) + "\n"
    print(text)  # first: a failed write must not lose the measurements
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
