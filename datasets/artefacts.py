"""Simulated generator artefacts: real photos passed through randomly drawn up-sampling stages.

Generators (GAN generators, the decoders of latent-diffusion VAEs) build their output by 2x
up-sampling steps: a transposed convolution, or nearest / bilinear up-sampling followed by a
convolution. Each step correlates the pixels of every 2x2 cell in a way natural photographs do
not (Zhang, Karaman and Chang 2019, "AutoGAN"; NPR, Tan et al. CVPR 2024). Training an
autoencoder to reproduce these traces costs more CPU than this project has (a 250-step run left
grey, blurred reconstructions, measured L1 0.10), so each pseudo-fake is made by one *fixed,
randomly initialised* up-sampling stage applied to the photo's own 2x area-downsampled copy:

* ``nearest``: nearest-neighbour 2x, then a random near-identity 3x3 convolution (SD VAE style);
* ``bilinear``: bilinear 2x, then a random near-identity 3x3 convolution;
* ``transposed``: a 4x4 stride-2 transposed convolution with random positive kernels, one per
  output phase, each normalised to unit gain (checkerboard traces).

Content and colour survive (only the top octave is replaced), so a detector trained on real vs
simulated cannot use content, colour or global blur; it has to find the 2x2 up-sampling pattern.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

Decoder = Literal["transposed", "nearest", "bilinear"]
DECODERS: tuple[Decoder, ...] = ("transposed", "nearest", "bilinear")


def _near_identity_kernel(rng: np.random.Generator, spread: float) -> np.ndarray:
    kernel = np.zeros((3, 3), np.float32)
    kernel[1, 1] = 1.0
    kernel += rng.normal(0.0, spread, (3, 3)).astype(np.float32)
    return kernel / kernel.sum()


def _transposed(low: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stride-2 transposed convolution: each output phase is a random 2x2 filter of the low image."""
    height, width = low.shape[0] * 2, low.shape[1] * 2
    out = np.empty((height, width, low.shape[2]), np.float32)
    padded = cv2.copyMakeBorder(low, 1, 1, 1, 1, cv2.BORDER_REFLECT_101)
    for a in (0, 1):
        for b in (0, 1):
            weights = rng.uniform(0.2, 1.0, (2, 2)).astype(np.float32)
            weights /= weights.sum()
            # phase (a, b) reads the low pixel and its neighbour towards that phase
            dy, dx = (0, 1) if a == 0 else (1, 2), (0, 1) if b == 0 else (1, 2)
            phase = sum(
                weights[i, j] * padded[dy[i] : dy[i] + low.shape[0], dx[j] : dx[j] + low.shape[1]]
                for i in (0, 1)
                for j in (0, 1)
            )
            out[a::2, b::2] = phase
    return out


def simulate_upsampling(image: np.ndarray, kind: Decoder, rng: np.random.Generator) -> np.ndarray:
    """``image`` (RGB uint8) rebuilt from its 2x-downsampled copy by a random ``kind`` stage; same size."""
    height, width = image.shape[:2]
    even = cv2.copyMakeBorder(image, 0, height % 2, 0, width % 2, cv2.BORDER_REFLECT_101)
    low = cv2.resize(even, (even.shape[1] // 2, even.shape[0] // 2), interpolation=cv2.INTER_AREA).astype(
        np.float32
    )
    size = (even.shape[1], even.shape[0])
    if kind == "transposed":
        up = _transposed(low, rng)
    else:
        flag = cv2.INTER_NEAREST if kind == "nearest" else cv2.INTER_LINEAR
        up = np.asarray(cv2.resize(low, size, interpolation=flag), np.float32)
        up = np.asarray(
            cv2.filter2D(up, -1, _near_identity_kernel(rng, 0.12), borderType=cv2.BORDER_REFLECT_101)
        )
    return np.clip(np.round(up[:height, :width]), 0, 255).astype(np.uint8)


def random_fake(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` through an up-sampling stage of a randomly chosen kind."""
    return simulate_upsampling(image, DECODERS[int(rng.integers(len(DECODERS)))], rng)
