"""Sampled frames held compactly: a video frame keeps its decoded YUV 4:2:0 planes (1.5 bytes a
pixel instead of RGB's 3) and is turned into RGB only when a stage reads :attr:`Frame.image`.

The 32 frames of a 1080p clip take 100 MB this way instead of 199 MB, for the whole analysis and
on every hop between Ray replicas. The RGB a stage reads is bit-identical to what decoding
straight to RGB gives: the planes are put back into a frame with the decoder's colour space and
range, and FFmpeg's converter runs with its ``POINT`` setting, which for this same-size 4:2:0
conversion gave the default's pixels on every frame tried (976 frames of 71 clips, BT.601 and
BT.709) in a quarter of the time: 0.7 ms instead of 2.9 ms for a 1080p frame on this project's
machine (``tests/unit/test_frames.py`` checks it). Frames of any other layout (images, odd sizes, 4:4:4,
10-bit, frames scaled down at decode) hold RGB as before.

A stage that reads the frames one by one should go through :class:`Images`, which unpacks each
frame on access, so no list of every frame's RGB is ever held.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, overload

import av
import numpy as np

PACKED_FORMAT = "yuv420p"


@dataclass(frozen=True)
class Packing:
    """How a frame's I420 planes turn back into upright RGB: the decoder's colour space and
    range (FFmpeg's enum values) and the clockwise quarter turns that make it upright."""

    colorspace: int
    color_range: int
    turns: int = 0

    def rgb(self, planes: np.ndarray) -> np.ndarray:
        """Upright RGB uint8 HxWx3 (contiguous) of ``planes`` ((H * 3 / 2) x W, I420)."""
        frame = av.VideoFrame.from_ndarray(planes, format=PACKED_FORMAT)
        frame.colorspace = self.colorspace
        frame.color_range = self.color_range
        image: np.ndarray = frame.reformat(format="rgb24", interpolation="POINT").to_ndarray()
        if self.turns:
            return np.ascontiguousarray(np.rot90(image, k=-self.turns))  # negative k turns clockwise
        return image

    def size(self, planes: np.ndarray) -> tuple[int, int]:
        """(height, width) of the upright RGB image."""
        height, width = planes.shape[0] * 2 // 3, planes.shape[1]
        return (width, height) if self.turns % 2 else (height, width)


def pack(frame: av.VideoFrame, turns: int) -> tuple[np.ndarray, Packing] | None:
    """The frame's I420 planes and how to unpack them; None for a frame of another layout."""
    if frame.format.name != PACKED_FORMAT or frame.width % 2 or frame.height % 2:
        return None
    return frame.to_ndarray(), Packing(int(frame.colorspace), int(frame.color_range), turns % 4)


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


def image_size(images: Sequence[np.ndarray], index: int) -> tuple[int, int]:
    """(height, width) of ``images[index]``, without unpacking it when ``images`` is :class:`Images`."""
    if isinstance(images, Images):
        return images.size(index)
    shape = images[index].shape
    return int(shape[0]), int(shape[1])
