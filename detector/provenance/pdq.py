"""Perceptual hashes of analysed media (PDQ, Meta's ThreatExchange algorithm, via ``pdqhash``).

An image gets one 256-bit PDQ hash; a video gets one per sampled frame (a vPDQ-style set). Frames
are first reduced to at most :data:`HASH_SIDE` px (PDQ itself works on a 64 px luminance grid, so
this changes nothing but the time). Two hashes within :data:`PDQ_THRESHOLD` differing bits
(ThreatExchange's standard threshold) show the same picture after re-encoding or resizing; a video
matches a known one when at least :data:`VIDEO_MATCH_SHARE` of its frames do. Only hashes are
kept anywhere, never the media. The lookup itself is the service's (:class:`KnownMedia`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from detector.report.schema import KnownMatch

PDQ_THRESHOLD = 31
VIDEO_MATCH_SHARE = 0.5
HASH_SIDE = 512
MIN_QUALITY = 50  # PDQ's own advice: hashes of flat pictures below this quality match too easily


@dataclass(frozen=True)
class MediaHashes:
    """The PDQ hashes (64 hex digits each) of an image or of a video's sampled frames, and their quality."""

    kind: Literal["image", "video"]
    hashes: tuple[str, ...]
    qualities: tuple[int, ...]

    def usable(self) -> list[str]:
        """The hashes of enough quality to be matched."""
        return [h for h, q in zip(self.hashes, self.qualities, strict=True) if q >= MIN_QUALITY]


class KnownMedia(Protocol):
    """A list of reviewed media hashes (the service's store): the closest reviewed match, if any."""

    def match(self, hashes: MediaHashes) -> KnownMatch | None: ...


def pdq_hex(image: np.ndarray) -> tuple[str, int]:
    """The PDQ hash of an RGB uint8 image as 64 hex digits, and its quality (0-100)."""
    import cv2
    import pdqhash

    h, w = image.shape[:2]
    if max(h, w) > HASH_SIDE:
        f = HASH_SIDE / max(h, w)
        image = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    bits, quality = pdqhash.compute(np.ascontiguousarray(image))
    packed = np.packbits(np.asarray(bits, dtype=np.uint8))
    return packed.tobytes().hex(), int(quality)


def perceptual_hashes(kind: Literal["image", "video"], frames: Sequence[np.ndarray]) -> MediaHashes:
    """One PDQ hash per frame (one for an image)."""
    pairs = [pdq_hex(f) for f in frames]
    return MediaHashes(kind, tuple(h for h, _ in pairs), tuple(q for _, q in pairs))


def hamming(a: str, b: str) -> int:
    """Differing bits between two hex PDQ hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
