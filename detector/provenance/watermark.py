"""Invisible watermarks of the Stable Diffusion reference pipelines, decoded as ``invisible-watermark`` does.

The CompVis Stable Diffusion scripts embed the 136-bit message ``StableDiffusionV1`` and the
diffusers SDXL pipeline a fixed 48-bit message, both with the package's ``dwtDct`` method (a
quantised coefficient in each block of the Haar approximation of the U channel). Decoding is
weak by design (bits flip on low-chroma blocks, and JPEG or resizing can erase the mark), so a
watermark is reported as *found* only when the decoded bits are so close to a known message that
chance is excluded: at most :data:`MAX_BIT_ERROR_RATE` of the bits differ (on 136 random bits that
happens with probability below 1e-17, on 48 below 1e-9). SDXL's pipeline passes RGB arrays where
the package expects BGR, so both channel orders are tried. A found mark is evidence of generation
by those pipelines (text-to-image or an AI edit such as inpainting); its absence says nothing.

The package's decoder loops over every 8x8 pixel block in Python, four times per image (two
messages, two channel orders): 95 ms a photo on this project's machine, over a third of an image's
analysis. :func:`block_bits` does its arithmetic in one vectorised pass per channel order and
:func:`decode_bits` groups the bits for each message: the same bits (``tests/unit/test_watermark.py``
compares them with the package's decoder), 11 ms a photo.

``invisible-watermark`` (its encoder writes the tests' marks; its decoder is the reference) is
installed without its dependencies (it asks for the GUI build of OpenCV;
``opencv-python-headless`` provides the same ``cv2``), see the Makefile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Scheme = Literal["stable-diffusion-v1", "sdxl"]
SD_V1_MESSAGE = b"StableDiffusionV1"
SDXL_MESSAGE = 0b101100111110110010010000011110111011000110011110
MAX_BIT_ERROR_RATE = 0.15
MIN_PIXELS = 256 * 256  # the package refuses smaller images
BLOCK = 4  # the package's block side in the Haar approximation (8 x 8 pixels of the image)
SCALE = 36.0  # the package's quantisation step of the U channel


@dataclass(frozen=True)
class WatermarkFinding:
    """A known invisible watermark decoded from the pixels, and how closely it matched."""

    scheme: Scheme
    bit_error_rate: float
    bits: int


def _messages() -> dict[Scheme, np.ndarray]:
    sd = np.unpackbits(np.frombuffer(SD_V1_MESSAGE, dtype=np.uint8))
    sdxl = np.array([int(b) for b in bin(SDXL_MESSAGE)[2:]], dtype=np.uint8)
    return {"stable-diffusion-v1": sd, "sdxl": sdxl}


def block_bits(bgr: np.ndarray) -> np.ndarray:
    """The bit each block carries, in the package's order: for every :data:`BLOCK` x :data:`BLOCK`
    block of the Haar approximation of the U channel (row by row), whether the largest coefficient
    after the first, in absolute value, lies in the upper half of its :data:`SCALE` step.

    The same arithmetic as ``imwatermark.maxDct.EmbedMaxDct.decode`` (its colour conversion and
    ``pywt.dwt2``, then one vectorised pass instead of a Python loop over blocks), so the bits are
    the same, and computed once for every message length."""
    import cv2
    import pywt

    rows, cols = (bgr.shape[0] // 4) * 4, (bgr.shape[1] // 4) * 4
    yuv = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2YUV)
    approximation, _ = pywt.dwt2(yuv[:rows, :cols, 1], "haar")
    r, c = approximation.shape[0] // BLOCK, approximation.shape[1] // BLOCK
    blocks = approximation[: r * BLOCK, : c * BLOCK].reshape(r, BLOCK, c, BLOCK).swapaxes(1, 2)
    rest = np.abs(blocks.reshape(r * c, BLOCK * BLOCK)[:, 1:])
    largest = rest[np.arange(r * c), rest.argmax(axis=1)]
    bits: np.ndarray = (np.mod(largest, SCALE) > 0.5 * SCALE).astype(np.uint8)
    return bits


def decode_bits(bits: np.ndarray, length: int) -> np.ndarray:
    """The ``length``-bit message the package reads from :func:`block_bits`: block ``i`` votes for
    bit ``i mod length``, and a bit is set when over 127/255 of its votes are."""
    slot = np.arange(len(bits)) % length
    share = np.bincount(slot, weights=bits, minlength=length) / np.bincount(slot, minlength=length)
    return (share * 255 > 127).astype(np.uint8)


def find_watermark(rgb: np.ndarray) -> WatermarkFinding | None:
    """The best-matching known watermark in an RGB uint8 image, or None (also for images too small)."""
    if rgb.ndim != 3 or rgb.shape[0] * rgb.shape[1] < MIN_PIXELS:
        return None
    best: WatermarkFinding | None = None
    # proper BGR (SD v1 scripts), and RGB passed as BGR (SDXL); each view's blocks read once
    views = [block_bits(view) for view in (rgb[:, :, ::-1], rgb)]
    for scheme, message in _messages().items():
        for bits in views:
            errors = float(np.mean(decode_bits(bits, len(message)) != message))
            if errors <= MAX_BIT_ERROR_RATE and (best is None or errors < best.bit_error_rate):
                best = WatermarkFinding(scheme, round(errors, 4), len(message))
    return best
