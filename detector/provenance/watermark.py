"""Invisible watermarks of the Stable Diffusion reference pipelines, decoded with ``invisible-watermark``.

The CompVis Stable Diffusion scripts embed the 136-bit message ``StableDiffusionV1`` and the
diffusers SDXL pipeline a fixed 48-bit message, both with the package's ``dwtDct`` method (a
quantised coefficient in each block of the Haar approximation of the U channel). Decoding is
weak by design (bits flip on low-chroma blocks, and JPEG or resizing can erase the mark), so a
watermark is reported as *found* only when the decoded bits are so close to a known message that
chance is excluded: at most :data:`MAX_BIT_ERROR_RATE` of the bits differ (on 136 random bits that
happens with probability below 1e-17, on 48 below 1e-9). SDXL's pipeline passes RGB arrays where
the package expects BGR, so both channel orders are tried. A found mark is evidence of generation
by those pipelines (text-to-image or an AI edit such as inpainting); its absence says nothing.

``invisible-watermark`` is installed without its dependencies (it asks for the GUI build of
OpenCV; ``opencv-python-headless`` provides the same ``cv2``), see the Makefile.
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


def decode_bits(image: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` bits the package's ``dwtDct`` decoder reads from an HxWx3 uint8 array (as BGR)."""
    from imwatermark.maxDct import EmbedMaxDct

    return np.asarray(
        EmbedMaxDct(watermarks=[], wmLen=length).decode(np.ascontiguousarray(image)), dtype=np.uint8
    )


def find_watermark(rgb: np.ndarray) -> WatermarkFinding | None:
    """The best-matching known watermark in an RGB uint8 image, or None (also for images too small)."""
    if rgb.ndim != 3 or rgb.shape[0] * rgb.shape[1] < MIN_PIXELS:
        return None
    best: WatermarkFinding | None = None
    for scheme, message in _messages().items():
        for view in (rgb[:, :, ::-1], rgb):  # proper BGR (SD v1 scripts), and RGB passed as BGR (SDXL)
            errors = float(np.mean(decode_bits(view, len(message)) != message))
            if errors <= MAX_BIT_ERROR_RATE and (best is None or errors < best.bit_error_rate):
                best = WatermarkFinding(scheme, round(errors, 4), len(message))
    return best
