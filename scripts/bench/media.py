"""Bench media generated from the shared face photos (or scikit-image's astronaut without them).

Clips are slow pans and zooms over real face photos, so every frame differs and faces move like
a talking head; they are written with libx264 at 25 fps. Nothing here is a test fixture: the
bench must run without tests/ (and anywhere ../shared/data exists or not).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARED_FACES = Path("..") / "shared" / "data" / "faces"


@dataclass(frozen=True)
class ClipSpec:
    """One bench clip: name, size, seconds, x264 options."""

    name: str
    width: int
    height: int
    seconds: int
    gop: int | None = None


CLIPS = (
    ClipSpec("640x480", 640, 480, 10),
    ClipSpec("1280x720-gop250", 1280, 720, 20, gop=250),
    ClipSpec("1920x1080", 1920, 1080, 10),
    ClipSpec("1080x1920", 1080, 1920, 10),
    ClipSpec("1280x720-30s", 1280, 720, 30),
)


def face_photos(count: int = 6) -> list[np.ndarray]:
    """Real face photos (RGB) from ../shared/data/faces, else the astronaut from scikit-image."""
    from PIL import Image

    files = sorted(
        p for p in (SHARED_FACES / "kair_real_faces").glob("*") if p.suffix.lower() in {".jpg", ".png"}
    )
    if files:
        return [np.asarray(Image.open(p).convert("RGB")) for p in files[:count]]
    from skimage import data

    return [np.asarray(data.astronaut())]


def _view(photo: np.ndarray, t: float, width: int, height: int) -> np.ndarray:
    """A frame: ``photo`` fitted to the frame, zoomed 1.0-1.3x and panned with ``t`` in [0, 1]."""
    import cv2

    ph, pw = photo.shape[:2]
    zoom = 1.0 + 0.3 * t
    scale = max(width / pw, height / ph) * zoom
    big = cv2.resize(
        photo, (max(width, round(pw * scale)), max(height, round(ph * scale))), interpolation=cv2.INTER_LINEAR
    )
    x = round((big.shape[1] - width) * t)
    y = round((big.shape[0] - height) * 0.5)
    return np.ascontiguousarray(big[y : y + height, x : x + width])


def write_clip(path: Path, spec: ClipSpec, photos: list[np.ndarray], fps: int = 25) -> Path:
    """Write one bench clip (photos in turn, each panning for an equal share of the duration)."""
    import av

    n = spec.seconds * fps
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        options: dict[str, str] = {"crf": "23", "preset": "veryfast"}
        if spec.gop:
            options |= {"g": str(spec.gop), "keyint_min": str(spec.gop), "sc_threshold": "0"}
        stream.options = {**options}
        per = max(1, n // len(photos))
        for i in range(n):
            photo = photos[min(i // per, len(photos) - 1)]
            frame = _view(photo, (i % per) / per, spec.width, spec.height)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path


def bench_clips(folder: Path) -> dict[str, Path]:
    """Every clip of :data:`CLIPS` under ``folder`` (written once)."""
    photos = face_photos()
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for spec in CLIPS:
        path = folder / f"{spec.name}.mp4"
        out[spec.name] = path if path.exists() else write_clip(path, spec, photos)
    return out


def distinct_jpegs(count: int, side: int = 512) -> list[bytes]:
    """``count`` different face JPEGs (services cache by content, so none may repeat)."""
    import io
    import math

    from PIL import Image

    photos = face_photos()
    cycle = math.lcm(len(photos), 100)  # photo and pan position (i * 0.37 mod 1) repeat after this
    out = []
    for i in range(count):
        size = side + 16 * (i // cycle)  # so a larger folder never repeats an image
        frame = _view(photos[i % len(photos)], (i * 0.37) % 1.0, size, size)
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out
