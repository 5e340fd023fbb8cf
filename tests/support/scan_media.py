"""Folders of generated media for the batch-scan tests: face photos and files that must fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.support import mediagen


def face_jpeg(path: Path, shift: int = 0) -> Path:
    """A 384x384 JPEG of the astronaut's face, rolled ``shift`` pixels (other bytes, same face)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.roll(mediagen.face_photo()[:384, 64:448], shift, axis=1)
    return mediagen.write_image(path, np.ascontiguousarray(image), "jpeg", quality=90)


HOSTILE_CODES = {
    "empty.jpg": "empty_media",
    "notes.txt": "unsupported_media_type",
    "truncated.jpg": "corrupt_media",
    "bomb.png": "too_many_pixels",
    "tiny.png": "media_too_small",
    "voice.m4a": "no_video_stream",
}
"""The files :func:`hostile_files` writes, by name -> the error code their row must carry."""


def hostile_files(folder: Path) -> dict[str, str]:
    """Write files that must fail into ``folder``; returns :data:`HOSTILE_CODES`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not media at all\n")
    jpeg = face_jpeg(folder / "tmp.jpg")
    (folder / "truncated.jpg").write_bytes(jpeg.read_bytes()[:300])
    jpeg.unlink()
    (folder / "bomb.png").write_bytes(mediagen.png_claiming(100_000, 100_000))
    mediagen.write_image(folder / "tiny.png", np.zeros((1, 1, 3), np.uint8), "png")
    mediagen.write_audio_only(folder / "voice.m4a")
    return dict(HOSTILE_CODES)
