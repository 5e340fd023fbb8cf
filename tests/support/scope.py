"""The scope of encoded media as the pipeline reads it, for the scope's tests."""

from __future__ import annotations

import io

from PIL import Image

from detector.media.loader import MediaLoader
from detector.media.sampling import FrameSampler
from detector.scoring.scope import Scope, assess

MIN_FACE_SIDE = 49.0


def scope_of(data: bytes, sides: list[float] | None = None) -> Scope:
    """:func:`detector.scoring.scope.assess` of ``data`` loaded and sampled, with faces of ``sides``
    found (none by default) and a judged face size of :data:`MIN_FACE_SIDE`."""
    loader = MediaLoader()
    media = loader.load(data)
    frames = [f.image for f in FrameSampler(loader=loader).sample(media).frames]
    return assess(media.info, frames, [] if sides is None else sides, MIN_FACE_SIDE)


def encoded(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    """``image`` saved in ``fmt`` with the save options ``kwargs``."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()
