"""The DFDC winner's frame and face extraction, implemented here, side by side with trueframe's.

Peer (Seferbekov's DFDC pipeline, as described by its authors): OpenCV ``VideoCapture``, ``grab()``
over every frame and ``retrieve()`` of 32 evenly spaced ones, then facenet-pytorch MTCNN with
thresholds [0.7, 0.8, 0.8] on each frame at half size, one frame per call. trueframe: the decode
plan (:mod:`detector.media.decode`) and the service's face detection plan
(:mod:`detector.faces.plan`: whole frames at anchors, regions between them) over the batched
face extractor, with the service's settings.

Each side runs in a fresh process (so peak RSS is its own), warms up on the first clip, then times
every clip; the sides alternate for two rounds and each clip's faster round counts. Faces found are
counted at the face model's judged size and above, in the clip's own pixels, so recall compares
like with like.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAMES = 32


@dataclass(frozen=True)
class SideResult:
    """One method on one clip: seconds (sampling, faces), faces found, peak RSS of its process."""

    sampling_s: float
    faces_s: float
    faces: int
    peak_rss_mb: float


def _peer_clip(path: Path, mtcnn: object, min_side: float) -> tuple[float, float, int]:
    import cv2

    start = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = set(np.linspace(0, count - 1, FRAMES, dtype=int).tolist())
    frames = []
    for i in range(count):
        if not cap.grab():
            break
        if i in wanted:
            ok, frame = cap.retrieve()
            if ok:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    sampled = time.perf_counter()
    found = 0
    for frame in frames:
        h, w = frame.shape[:2]
        half = cv2.resize(frame, (w // 2, h // 2))
        boxes, _probs = mtcnn.detect(half)  # type: ignore[attr-defined]
        if boxes is not None:
            sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * 2.0
            found += int((sides >= min_side).sum())
    return sampled - start, time.perf_counter() - sampled, found


def _trueframe_clip(
    path: Path, parts: tuple[object, object, object], min_side: float
) -> tuple[float, float, int]:
    from detector.runtime import release_memory
    from detector.stages import find_faces

    loader, sampler, extractor = parts
    start = time.perf_counter()
    sample = sampler.sample(loader.load(path), FRAMES)  # type: ignore[attr-defined]
    sampled = time.perf_counter()
    settings = extractor.settings  # type: ignore[attr-defined]
    found = find_faces(extractor.detect, sample.frames, settings, extractor.min_face_px)  # type: ignore[attr-defined]
    done = time.perf_counter()
    faces = sum(
        1
        for frame, dets in zip(sample.frames, found.per_frame, strict=True)
        for d in dets
        if d.side / frame.scale >= min_side
    )
    del sample, found
    release_memory()  # as the service does after every analysis (serving/analyzer.py)
    return sampled - start, done - sampled, faces


def _run_side(side: str, clips: list[Path], min_side: float, queue: multiprocessing.Queue) -> None:
    import torch

    torch.set_num_threads(2)
    if side == "peer":  # trueframe's side imports neither torchvision nor facenet-pytorch
        from detector.faces.tvcompat import ensure_torchvision

        ensure_torchvision()
        from facenet_pytorch import MTCNN

        model: object = MTCNN(thresholds=[0.7, 0.8, 0.8], device="cpu", keep_all=True)
        run = lambda p: _peer_clip(p, model, min_side)  # noqa: E731
    else:
        from detector.media.loader import MediaLoader
        from detector.media.sampling import FrameSampler
        from detector.settings import get_settings
        from detector.stages import face_extractor

        settings = get_settings()
        loader = MediaLoader(settings.limits)
        parts = (loader, FrameSampler(settings.sampling, loader), face_extractor(settings, "cpu"))
        run = lambda p: _trueframe_clip(p, parts, min_side)  # noqa: E731
    run(clips[0])  # warm-up: model loading and first-call costs are not measured
    results = [run(path) for path in clips]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    queue.put([SideResult(s, f, n, peak) for s, f, n in results])


ROUNDS = 2


def side_by_side(clips: list[Path], min_side: float) -> dict[str, list[SideResult]]:
    """Both methods on the same clips, each in its own fresh process, alternating for
    :data:`ROUNDS` rounds; per clip the faster round of each side counts (this machine's speed
    drifts between runs), peak RSS is the larger."""
    context = multiprocessing.get_context("spawn")
    rounds: dict[str, list[list[SideResult]]] = {"peer": [], "trueframe": []}
    for _ in range(ROUNDS):
        for side in rounds:
            queue = context.Queue()
            proc = context.Process(target=_run_side, args=(side, clips, min_side, queue))
            proc.start()
            rounds[side].append(queue.get())
            proc.join()
    out = {}
    for side, runs in rounds.items():
        peak = max(r.peak_rss_mb for run in runs for r in run)
        best = [min(per_clip, key=lambda r: r.sampling_s + r.faces_s) for per_clip in zip(*runs, strict=True)]
        out[side] = [SideResult(r.sampling_s, r.faces_s, r.faces, peak) for r in best]
    return out


def geometric_mean(values: list[float]) -> float:
    """The geometric mean of positive values."""
    return float(np.exp(np.mean(np.log(values))))
