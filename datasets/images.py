"""Image files for training and evaluation: listing, decoding (EXIF-upright RGB), face context crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detector.faces.extract import crop_face

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


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
