"""Sampled frames held compactly: a video frame keeps its decoded YUV 4:2:0 planes (1.5 bytes a
pixel instead of RGB's 3) and is turned into RGB only when a stage reads :attr:`Frame.image`.

The 32 frames of a 1080p clip take 100 MB this way instead of 199 MB, for the whole analysis and
on every hop between Ray replicas. The RGB a stage reads is bit-identical to what decoding
straight to RGB gives: the planes are put back into a frame with the decoder's pixel format,
colour space and range, and FFmpeg converts it as it converts a decoded frame (about 1.2 ms for a
1080p frame on one thread on this project's machine). A display rotation is applied to the planes
once, when the frame is packed (turning the three planes alike gives the same pixels as turning
the RGB). Frames of any other layout (images, odd sides, 4:2:2 and 4:4:4, more than 8 bits,
frames scaled down at decode) hold RGB as before.

A stage that reads the frames one by one should go through :class:`Images`, which unpacks each
frame on access, so no list of every frame's RGB is ever held.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, overload

import av
import numpy as np

PACKED_FORMATS = frozenset({"yuv420p", "yuvj420p"})
"""Decoded layouts held packed: 8-bit 4:2:0, limited (``yuv420p``) or full range (``yuvj420p``)."""


@dataclass(frozen=True)
class Packing:
    """How a frame's I420 planes turn back into RGB: their pixel format (``yuv420p``, or
    ``yuvj420p`` for full range) and the decoder's colour space and range (FFmpeg's enum values)."""

    colorspace: int
    color_range: int
    format: str = "yuv420p"

    def rgb(self, planes: np.ndarray) -> np.ndarray:
        """RGB uint8 HxWx3 (contiguous) of ``planes`` ((H * 3 / 2) x W, I420), converted by FFmpeg
        as a decoder's frame is (same colour tags, no scaling) on one thread: a conversion is too
        short to pay for a thread pool, which on a large machine would span every core."""
        frame = av.VideoFrame.from_ndarray(planes, format=self.format)
        frame.colorspace = self.colorspace
        frame.color_range = self.color_range
        return np.ascontiguousarray(frame.reformat(format="rgb24", threads=1).to_ndarray())

    @staticmethod
    def size(planes: np.ndarray) -> tuple[int, int]:
        """(height, width) of the RGB image."""
        return planes.shape[0] * 2 // 3, planes.shape[1]


def _turned(planes: np.ndarray, turns: int) -> np.ndarray:
    """I420 ``planes`` turned clockwise by ``turns`` quarter turns (each plane turned alike)."""
    height, width = planes.shape[0] * 2 // 3, planes.shape[1]
    luma = planes[:height]
    chroma = planes[height:].reshape(2, height // 2, width // 2)
    turned = [np.rot90(luma, k=-turns), np.rot90(chroma[0], k=-turns), np.rot90(chroma[1], k=-turns)]
    new_width = turned[0].shape[1]
    return np.concatenate([plane.reshape(-1) for plane in turned]).reshape(-1, new_width)


def pack(frame: av.VideoFrame, turns: int) -> tuple[np.ndarray, Packing] | None:
    """The frame's I420 planes, turned upright, and how to unpack them; None for a frame of another
    layout (4:2:2, 4:4:4, more than 8 bits, an odd side)."""
    if frame.format.name not in PACKED_FORMATS or frame.width % 2 or frame.height % 2:
        return None
    planes = frame.to_ndarray()
    if turns % 4:
        planes = _turned(planes, turns % 4)
    return planes, Packing(int(frame.colorspace), int(frame.color_range), frame.format.name)


@dataclass(frozen=True)
class Frame:
    """One sampled frame: position in the sample, presentation time (s) and its pixels.

    ``pixels`` is the upright RGB uint8 image, or, when ``packing`` is set, the frame's I420
    planes; :attr:`image` is always RGB (unpacked anew on each read: keep it only while needed).
    ``scale`` is the image's size over the medium's (1.0 unless it was scaled down at decode).
    """

    index: int
    timestamp: float
    pixels: np.ndarray
    scale: float = 1.0
    packing: Packing | None = None

    @property
    def image(self) -> np.ndarray:
        """The upright RGB uint8 HxWx3 image."""
        return self.pixels if self.packing is None else self.packing.rgb(self.pixels)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of :attr:`image`, without unpacking it."""
        if self.packing is None:
            return int(self.pixels.shape[0]), int(self.pixels.shape[1])
        return self.packing.size(self.pixels)

    def __post_init__(self) -> None:
        shape, packed = self.pixels.shape, self.packing is not None
        valid = (
            len(shape) == 2 and shape[0] % 3 == 0 and shape[1] % 2 == 0  # rows 3/2 x an even height
            if packed
            else len(shape) == 3 and shape[2] == 3
        )
        if self.pixels.dtype != np.uint8 or not valid:
            what = "I420 planes ((H * 3 / 2) x W, even sides)" if packed else "RGB (H x W x 3)"
            raise ValueError(f"frame {self.index}: expected uint8 {what}, got {self.pixels.dtype} {shape}")

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Reads frames pickled before packing existed (their RGB was the field ``image``)."""
        state = dict(state)
        if "image" in state:
            state["pixels"] = state.pop("image")
        state.setdefault("packing", None)
        for key, value in state.items():
            object.__setattr__(self, key, value)


class HasImage(Protocol):
    """Anything that shows an RGB image (a :class:`Frame`, a test's stand-in)."""

    @property
    def image(self) -> np.ndarray: ...


class Images(Sequence[np.ndarray]):
    """The RGB images of frames (or of plain arrays), each unpacked when it is read."""

    def __init__(self, items: Sequence[HasImage | np.ndarray]) -> None:
        self._items = list(items)

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: slice) -> Images: ...

    def __getitem__(self, index: int | slice) -> np.ndarray | Images:
        if isinstance(index, slice):
            return Images(self._items[index])
        item = self._items[index]
        return item if isinstance(item, np.ndarray) else item.image

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self._items)))

    def size(self, index: int) -> tuple[int, int]:
        """(height, width) of image ``index``, without unpacking it."""
        item = self._items[index]
        if isinstance(item, Frame):
            return item.size
        shape = item.shape if isinstance(item, np.ndarray) else item.image.shape
        return int(shape[0]), int(shape[1])

    def source(self, index: int) -> HasImage | np.ndarray:
        """The frame or array behind image ``index`` (to pass on without unpacking it)."""
        return self._items[index]


def sources(images: Sequence[np.ndarray]) -> list[HasImage | np.ndarray]:
    """What to send another process for ``images``: packed frames stay packed (half the bytes)."""
    if isinstance(images, Images):
        return [images.source(i) for i in range(len(images))]
    return list(images)
