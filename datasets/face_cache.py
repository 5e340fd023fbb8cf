"""Face crops with context and landmarks, detected once with MTCNN and cached as one ``.npz``.

Training epochs then cost no face detection: every face is stored as a square *context crop*
(``context_margin`` times the face-box side, resized to ``size``) together with its box and
MTCNN's five landmarks mapped into that crop. The self-blending generator works on the context
crop; the model's own crop (its manifest ``crop_margin``) is cut from the centre afterwards with
:func:`center_crop`, exactly as :func:`detector.faces.crop_face` would cut it from the frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detector.faces.extract import FaceExtractor, crop_face

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass
class FaceCache:
    """``crops`` (N,S,S,3) uint8, ``boxes`` (N,4) and ``landmarks`` (N,5,2) in crop pixels, ``groups``."""

    crops: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    groups: list[str]
    sources: list[str]
    context_margin: float

    def __len__(self) -> int:
        return len(self.crops)

    def subset(self, keep: Sequence[int]) -> FaceCache:
        """The faces at positions ``keep``."""
        idx = np.asarray(keep, dtype=np.int64)
        return FaceCache(
            self.crops[idx],
            self.boxes[idx],
            self.landmarks[idx],
            [self.groups[i] for i in idx],
            [self.sources[i] for i in idx],
            self.context_margin,
        )

    @classmethod
    def concat(cls, caches: Sequence[FaceCache]) -> FaceCache:
        """One cache holding the faces of ``caches`` (same context margin and crop size)."""
        margins = {c.context_margin for c in caches}
        if len(margins) != 1:
            raise ValueError(f"caches have different context margins: {sorted(margins)}")
        return cls(
            np.concatenate([c.crops for c in caches]),
            np.concatenate([c.boxes for c in caches]),
            np.concatenate([c.landmarks for c in caches]),
            [g for c in caches for g in c.groups],
            [s for c in caches for s in c.sources],
            margins.pop(),
        )

    def save(self, path: Path) -> None:
        """Write one compressed ``.npz``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            crops=self.crops,
            boxes=self.boxes,
            landmarks=self.landmarks,
            groups=np.asarray(self.groups),
            sources=np.asarray(self.sources),
            context_margin=np.float32(self.context_margin),
        )

    @classmethod
    def load(cls, path: Path) -> FaceCache:
        """Read a cache written by :meth:`save`."""
        with np.load(path) as data:
            return cls(
                data["crops"],
                data["boxes"].astype(np.float32),
                data["landmarks"].astype(np.float32),
                [str(g) for g in data["groups"]],
                [str(s) for s in data["sources"]],
                float(data["context_margin"]),
            )


def load_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 (EXIF orientation applied), decoded with Pillow."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def image_files(root: Path) -> list[Path]:
    """Image files under ``root`` (recursive), sorted for reproducibility."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def context_crop(
    image: np.ndarray, box: tuple[float, float, float, float], landmarks: np.ndarray, margin: float, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``crop_face(image, box, margin, size)`` plus ``box`` and ``landmarks`` mapped into the crop."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(1, round(margin * max(x2 - x1, y2 - y1)))
    left = round((x1 + x2) / 2.0 - side / 2.0)
    top = round((y1 + y2) / 2.0 - side / 2.0)
    scale = size / side
    crop = crop_face(image, box, margin, size)
    offset = np.array([left, top], dtype=np.float32)
    new_box = ((np.array(box, dtype=np.float32).reshape(2, 2) - offset) * scale).reshape(4)
    new_landmarks = (np.asarray(landmarks, dtype=np.float32) - offset) * scale
    return crop, new_box, new_landmarks


def center_crop(crop: np.ndarray, context_margin: float, margin: float, size: int) -> np.ndarray:
    """The model crop (``margin``) cut from the centre of a context crop (``context_margin``)."""
    if margin > context_margin:
        raise ValueError(f"model margin {margin} exceeds the cached context margin {context_margin}")
    full = crop.shape[0]
    side = max(1, round(full * margin / context_margin))
    start = (full - side) // 2
    square = crop[start : start + side, start : start + side]
    if side == size:
        return np.ascontiguousarray(square)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(square, (size, size), interpolation=interpolation))


def build_face_cache(
    files: Iterable[tuple[Path, str]],
    extractor: FaceExtractor,
    *,
    context_margin: float = 2.0,
    size: int = 256,
    max_faces_per_image: int = 8,
    progress: Callable[[Iterable[tuple[Path, str]]], Iterable[tuple[Path, str]]] | None = None,
) -> FaceCache:
    """Detect faces in each ``(path, group)`` image and keep their context crops and landmarks."""
    crops: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    marks: list[np.ndarray] = []
    groups: list[str] = []
    sources: list[str] = []
    items = list(files)
    for path, group in progress(items) if progress else items:
        image = load_rgb(path)
        for det in extractor.detect([image])[0][:max_faces_per_image]:
            crop, box, lm = context_crop(image, det.box, det.landmarks, context_margin, size)
            crops.append(crop)
            boxes.append(box)
            marks.append(lm)
            groups.append(group)
            sources.append(str(path))
    if not crops:
        return FaceCache(
            np.zeros((0, size, size, 3), np.uint8),
            np.zeros((0, 4), np.float32),
            np.zeros((0, 5, 2), np.float32),
            [],
            [],
            context_margin,
        )
    return FaceCache(np.stack(crops), np.stack(boxes), np.stack(marks), groups, sources, context_margin)
