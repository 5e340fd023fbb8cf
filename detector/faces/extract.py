"""Face detection (MTCNN with facenet-pytorch's weights), square face crops, and faces linked into tracks.

MTCNN runs on copies downscaled so that the longest side is at most
``FaceSettings.detect_longest_side`` (never upscaled): a 1080p frame costs what a 640 px one does.
Copies of equal size are batched together (MTCNN needs equal sizes in a batch), boxes and
landmarks are mapped back to full resolution, and faces whose full-resolution side
(:attr:`FaceDetection.side`, ``max(w, h)``) is below ``min_face_px`` or whose probability is below
``min_probability`` are dropped; the stages set ``min_face_px`` from the smallest face the face
model judges, less a margin for MTCNN's box jitter (:func:`detector.stages.smallest_face`), so
the pyramid never searches for faces far below what the model can judge. MTCNN's own
``min_face_size`` is ``min_face_px`` scaled to the copy, but never below
:data:`MIN_DETECT_FACE_PX` (PNet's 12 px window: a smaller value makes MTCNN upscale the copy,
which costs more than detecting on a larger copy), so on a very large image the smallest face
found is ``MIN_DETECT_FACE_PX`` times the downscale factor.

Detection is :func:`detector.faces.mtcnn_pass.detect_batch` (facenet's algorithm over MTCNN's
three networks, :mod:`detector.faces.mtcnn_nets`, with R-Net and O-Net crops cut in one
vectorised pass; neither facenet-pytorch nor torchvision is imported). A batch holds at most
``FaceSettings.batch_size`` copies and at most ``FaceSettings.max_batch_pixels`` pixels (but at
least one copy), so peak memory stays flat whatever the frame size.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import torch

from detector.faces.tracks import FaceDetection, FaceTrack, box_iou, link_tracks
from detector.media.frames import Images
from detector.runtime import select_device
from detector.settings import FaceSettings

if TYPE_CHECKING:
    from detector.faces.mtcnn_nets import Mtcnn

__all__ = [
    "FaceDetection",
    "FaceExtractor",
    "FaceResult",
    "FaceTrack",
    "FrameLike",
    "box_iou",
    "crop_face",
    "link_tracks",
]

MIN_DETECT_FACE_PX = 12.0
DEFAULT_MIN_FACE_PX = 40  # a bare extractor without a face model to size it (tests, baselines)


class FrameLike(Protocol):
    """What face extraction needs from a sampled frame (``detector.media.frames.Frame`` fits)."""

    @property
    def index(self) -> int: ...

    @property
    def image(self) -> np.ndarray: ...


@dataclass
class FaceResult:
    """Faces of a frame sequence: per frame (aligned with the input) and linked into tracks."""

    per_frame: list[list[FaceDetection]]
    tracks: list[FaceTrack]

    @property
    def n_faces(self) -> int:
        return sum(len(dets) for dets in self.per_frame)


def crop_face(
    image: np.ndarray, box: tuple[float, float, float, float], margin: float, size: int
) -> np.ndarray:
    """Square crop centred on ``box`` with side ``margin * max(w, h)``, resized to ``size`` x ``size``.

    Parts of the square outside the image are zero (black), so a face at the border stays centred
    in its crop. Returns a new uint8 array with the image's channels.
    """
    if margin <= 0 or size < 1:
        raise ValueError("margin must be > 0 and size >= 1")
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(1, round(margin * max(x2 - x1, y2 - y1)))
    left = round((x1 + x2) / 2.0 - side / 2.0)
    top = round((y1 + y2) / 2.0 - side / 2.0)
    height, width = image.shape[:2]
    square = np.zeros((side, side, *image.shape[2:]), dtype=np.uint8)
    sx0, sy0 = max(left, 0), max(top, 0)
    sx1, sy1 = min(left + side, width), min(top + side, height)
    if sx1 > sx0 and sy1 > sy0:
        square[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = image[sy0:sy1, sx0:sx1]
    if side == size:
        return square
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    resized = cv2.resize(square, (size, size), interpolation=interpolation)
    return resized.reshape(size, size, *image.shape[2:])


def _detect_shape(height: int, width: int, longest_side: int) -> tuple[int, int]:
    """(height, width) of the copy MTCNN sees: longest side at most ``longest_side``, never larger."""
    scale = min(1.0, longest_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _checked_size(images: Sequence[np.ndarray], position: int) -> tuple[int, int]:
    """(height, width) of an image; a plain array is checked for RGB uint8 here, before any work,
    a frame is not unpacked (it reads as RGB by construction)."""
    if isinstance(images, Images):
        source = images.source(position)
        if not isinstance(source, np.ndarray):
            return images.size(position)
    else:
        source = images[position]
    height, width = _as_rgb(source).shape[:2]
    return int(height), int(width)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 HxWx3 image, got {image.dtype} {image.shape}")
    return image


class FaceExtractor:
    """MTCNN face detection over batches of frames; the network is built on first use."""

    def __init__(self, settings: FaceSettings | None = None, device: str | torch.device = "cpu") -> None:
        self.settings = settings or FaceSettings()
        self.min_face_px = self.settings.min_face_px or DEFAULT_MIN_FACE_PX
        self.device = select_device(device) if isinstance(device, str) else device
        self._mtcnn: Mtcnn | None = None
        self._lock = threading.RLock()

    def _network(self) -> Mtcnn:
        with self._lock:
            if self._mtcnn is None:
                from detector.faces.mtcnn_nets import load_mtcnn

                self._mtcnn = load_mtcnn(self.device)
            return self._mtcnn

    def detect(self, images: Sequence[np.ndarray]) -> list[list[FaceDetection]]:
        """Faces in each RGB uint8 image, largest first; ``frame_index`` is the image's position.

        A video's frames go through :func:`detector.stages.find_faces` (the detection plan and
        the tracks), which calls this on whole frames and on regions of them."""
        cfg = self.settings
        sizes = [_checked_size(images, pos) for pos in range(len(images))]  # frames stay packed
        results: list[list[FaceDetection]] = [[] for _ in sizes]
        groups: dict[tuple[int, int], list[int]] = {}
        for pos, (height, width) in enumerate(sizes):
            groups.setdefault(_detect_shape(height, width, cfg.detect_longest_side), []).append(pos)
        for (h, w), positions in groups.items():
            per_batch = max(1, min(cfg.batch_size, cfg.max_batch_pixels // (h * w)))
            for start in range(0, len(positions), per_batch):
                chunk = positions[start : start + per_batch]
                # images of different sizes can share a copy size: search down to the smallest scale
                scale = min(min(h / sizes[p][0], w / sizes[p][1]) for p in chunk)
                min_size = max(MIN_DETECT_FACE_PX, self.min_face_px * scale)
                if min(h, w) < min_size:
                    continue  # no face of the minimum size fits (MTCNN fails on an empty pyramid)
                copies = np.stack([_downscale(images[p], h, w) for p in chunk])  # checked above
                for p, found in zip(chunk, self._run(copies, min_size), strict=True):
                    results[p] = self._to_full_res(p, sizes[p], (h, w), *found)
        return results

    def _run(self, batch: np.ndarray, min_size: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """MTCNN on an (N, h, w, 3) uint8 batch: per image float32 boxes, probabilities, landmarks."""
        from detector.faces.mtcnn_pass import detect_batch

        return detect_batch(self._network(), batch, min_size)

    def _to_full_res(
        self,
        frame_index: int,
        full_shape: tuple[int, ...],
        small_shape: tuple[int, int],
        boxes: np.ndarray,
        probs: np.ndarray,
        points: np.ndarray,
    ) -> list[FaceDetection]:
        """Scale boxes and landmarks back, clip boxes to the frame, apply the thresholds."""
        height, width = full_shape[:2]
        sy, sx = height / small_shape[0], width / small_shape[1]
        boxes = boxes * np.array([sx, sy, sx, sy], np.float32)
        points = points * np.array([sx, sy], np.float32)
        found = []
        for box, prob, pts in zip(boxes, probs, points, strict=True):
            x1, x2 = np.clip([box[0], box[2]], 0, width)
            y1, y2 = np.clip([box[1], box[3]], 0, height)
            det = FaceDetection(
                frame_index=frame_index,
                box=(float(x1), float(y1), float(x2), float(y2)),
                probability=float(prob),
                landmarks=np.ascontiguousarray(pts, dtype=np.float32),
            )
            if det.probability >= self.settings.min_probability and det.side >= self.min_face_px:
                found.append(det)
        found.sort(key=lambda d: -d.side)
        return found


def _downscale(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
