"""Media for the soak run: a photo as JPEG and PNG and short H.264 clips, each upload made unique."""

from __future__ import annotations

import io
import random
import time
import zlib
from dataclasses import dataclass, field

import av
import numpy as np
from PIL import Image


def _photo() -> np.ndarray:
    """A face photograph when scikit-image is installed (its public-domain astronaut), else a pattern."""
    try:
        from skimage import data

        return np.asarray(data.astronaut(), dtype=np.uint8)[::2, ::2]
    except ImportError:
        y, x = np.mgrid[0:256, 0:256]
        return np.stack([x, y, (x + y) // 2], axis=-1).astype(np.uint8)


def _clip(photo: np.ndarray, seed: int, frames: int = 8, size: tuple[int, int] = (160, 120)) -> bytes:
    width, height = size
    face = np.asarray(Image.fromarray(photo).resize((96, 96)))
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "0"}
        for i in range(frames):
            image = np.full((height, width, 3), (seed * 37 + i * 9) % 256, dtype=np.uint8)
            x = (i * 8 + seed) % (width - 96)
            image[12:108, x : x + 96] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


@dataclass
class Media:
    """Base media; :meth:`upload` makes each request's bytes unique without re-encoding."""

    jpeg: bytes
    png: bytes
    clips: list[bytes]
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @classmethod
    def build(cls, n_clips: int = 6) -> Media:
        photo = _photo()
        jpeg, png = io.BytesIO(), io.BytesIO()
        Image.fromarray(photo).save(jpeg, format="JPEG", quality=90)
        Image.fromarray(photo[::2, ::2]).save(png, format="PNG")
        return cls(jpeg.getvalue(), png.getvalue(), [_clip(photo, seed) for seed in range(n_clips)])

    def upload(self, kind: str) -> tuple[str, bytes]:
        tag = f"{time.time_ns()}-{self.rng.random()}".encode()
        if kind == "jpeg":  # a comment segment right after SOI
            comment = b"\xff\xfe" + (len(tag) + 2).to_bytes(2, "big") + tag
            return "p.jpg", self.jpeg[:2] + comment + self.jpeg[2:]
        if kind == "png":  # a tEXt chunk right after IHDR
            body = b"tEXt" + b"soak\x00" + tag
            chunk = (len(body) - 4).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
            return "p.png", self.png[:33] + chunk + self.png[33:]
        if kind == "video":  # a free box at the end
            clip = self.rng.choice(self.clips)
            return "c.mp4", clip + (8 + len(tag)).to_bytes(4, "big") + b"free" + tag
        if kind == "text":
            return "notes.jpg", b"not a picture at all\n" * 20
        return "cut.jpg", self.jpeg[: len(self.jpeg) // 2]  # "cut"


KINDS = [("jpeg", 0.35), ("png", 0.2), ("video", 0.35), ("text", 0.05), ("cut", 0.05)]
