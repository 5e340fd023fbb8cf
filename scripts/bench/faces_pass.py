"""facenet-pytorch's ``MTCNN.detect`` vs trueframe's detection pass, each in a fresh process.

Both see the same 32 copies of 1920x1080 frames made from a shared face photo, downscaled to
the copy size FaceExtractor uses (longest side ``detect_longest_side``): facenet in batches of
16 (how FaceExtractor called it before), ours in batches of at most ``max_batch_pixels``
pixels. Peak memory is the growth of the process's peak RSS over the run (after a warm-up).
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from dataclasses import dataclass

import numpy as np

from detector.settings import FaceSettings
from scripts.bench.media import _view, face_photos


@dataclass(frozen=True)
class PassResult:
    """One side: seconds for all frames, faces found, peak RSS growth in MB."""

    seconds: float
    faces: int
    peak_growth_mb: float


def _copies(count: int, settings: FaceSettings) -> np.ndarray:
    """``count`` 1080p frames of a face photo (panned, zoomed), downscaled like FaceExtractor does."""
    import cv2

    photo = face_photos(1)[0]
    scale = settings.detect_longest_side / 1920
    size = (round(1920 * scale), round(1080 * scale))
    copies = [
        cv2.resize(_view(photo, i / count, 1920, 1080), size, interpolation=cv2.INTER_AREA)
        for i in range(count)
    ]
    return np.stack(copies)


def _run_side(side: str, count: int, queue: multiprocessing.Queue) -> None:
    import torch

    torch.set_num_threads(2)
    from detector.faces.mtcnn_nets import load_mtcnn
    from detector.faces.mtcnn_pass import detect_batch
    from detector.settings import get_settings
    from detector.stages import face_spec, smallest_face

    settings = FaceSettings()
    copies = _copies(count, settings)
    min_size = smallest_face(settings, face_spec(get_settings())) * settings.detect_longest_side / 1920
    if side == "facenet":
        from detector.faces.tvcompat import ensure_torchvision

        ensure_torchvision()
        from facenet_pytorch import MTCNN

        mtcnn = MTCNN(keep_all=True, select_largest=False, device="cpu").eval()
        mtcnn.min_face_size = min_size
    else:
        nets = load_mtcnn(torch.device("cpu"))
    per_batch = (
        16
        if side == "facenet"
        else max(1, min(settings.batch_size, settings.max_batch_pixels // copies[0, ..., 0].size))
    )

    def run(batch: np.ndarray) -> int:
        if side == "facenet":
            boxes = mtcnn.detect(batch, landmarks=True)[0]
            return sum(0 if b is None else len(b) for b in boxes)
        return sum(len(f[0]) for f in detect_batch(nets, batch, min_size))

    run(copies[:1])  # warm-up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    faces = sum(run(copies[i : i + per_batch]) for i in range(0, count, per_batch))
    seconds = time.perf_counter() - start
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024.0
    queue.put(PassResult(seconds, faces, growth))


def compare(count: int = 32) -> dict[str, PassResult]:
    """facenet's detect and ours on ``count`` 1080p frames, each side in its own process."""
    context = multiprocessing.get_context("spawn")
    out = {}
    for side in ("facenet", "trueframe"):
        queue = context.Queue()
        proc = context.Process(target=_run_side, args=(side, count, queue))
        proc.start()
        out[side] = queue.get()
        proc.join()
    return out
