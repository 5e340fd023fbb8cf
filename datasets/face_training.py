"""Face-forgery training batches: real faces against pseudo-fakes and real manipulations.

Half of every batch is real faces (photos and video frames). The other half is, per sample, a
self-blended image (:mod:`datasets.self_blend`), a landmark-matched swap with another identity
(:mod:`datasets.swap`), or a face from a real manipulated video when the pool has some. Both halves
get the same crop jitter and pass through one :class:`~datasets.compress.CompressionChain`.

By default every real face is drawn equally often. :func:`source_weights` can instead give named
sources a fixed share of the draws (of the real half and of the faces that pseudo-fakes are made
from alike), e.g. to test whether the few real *video frames*, a sliver of the real half while
the real manipulations (video frames too) are a fifth of the fake half, make "looks like a clean
video frame" a cue for fake (``scripts/configs/face_v5.yaml``: raising them to a fifth did not help).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from datasets.batch import Batch
from datasets.compress import CompressionChain
from datasets.face_pool import FacePool
from datasets.self_blend import SelfBlendConfig, self_blend
from datasets.swap import nearest_donor, swap_blend

AUDIT_SHARE = 15  # percent of UTKFace faces held out of training for the bias audit


def is_audit_face(group: str) -> bool:
    """Whether a UTKFace face is held out for ``trueframe audit`` (stable hash of its file name)."""
    if not group.startswith("utkface/"):
        return False
    return int(hashlib.sha1(group.encode()).hexdigest(), 16) % 100 < AUDIT_SHARE


def source_weights(groups: list[str], shares: dict[str, float]) -> np.ndarray | None:
    """Draw probabilities over faces: each source named in ``shares`` (a group prefix ``name/``)
    gets that share of the draws, split evenly over its faces; the other faces share the rest evenly.
    None when ``shares`` is empty (uniform draws, the original random stream)."""
    if not shares:
        return None
    if sum(shares.values()) >= 1.0 or min(shares.values()) <= 0.0:
        raise ValueError(f"source shares must be positive and sum below 1: {shares}")
    source = [g.split("/", 1)[0] for g in groups]
    missing = sorted(set(shares) - set(source))
    if missing:
        raise ValueError(f"no faces of the sources {missing} in the pool")
    rest = [s not in shares for s in source]
    if not any(rest):
        raise ValueError("the shared sources leave no other faces for the remaining share")
    counts = {name: source.count(name) for name in shares}
    other = (1.0 - sum(shares.values())) / sum(rest)
    return np.asarray([shares[s] / counts[s] if s in shares else other for s in source], np.float64)


def jitter_crop(
    context: np.ndarray, context_margin: float, margin: float, size: int, rng: np.random.Generator | None
) -> np.ndarray:
    """The model crop cut from a context crop, with random scale (+-8%) and shift (+-4%) when ``rng``."""
    full = context.shape[0]
    scale = float(rng.uniform(0.92, 1.08)) if rng is not None else 1.0
    side = max(8, min(full, round(full * margin * scale / context_margin)))
    centre = (full - side) / 2.0
    dx, dy = (rng.uniform(-0.04, 0.04, size=2) * side) if rng is not None else (0.0, 0.0)
    x0 = int(np.clip(round(centre + dx), 0, full - side))
    y0 = int(np.clip(round(centre + dy), 0, full - side))
    square = context[y0 : y0 + side, x0 : x0 + side]
    flag = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(square, (size, size), interpolation=flag))


@dataclass
class FaceMix:
    """Shares of the fake half: self-blends, swaps and (when present) real manipulated faces."""

    self_blend: float = 0.45
    swap: float = 0.35
    real_fake: float = 0.20
    donor_candidates: int = 24
    blend: SelfBlendConfig = field(default_factory=SelfBlendConfig)


MIX_KEYS = ("self_blend", "swap", "real_fake")


def face_mix(shares: dict[str, float]) -> FaceMix:
    """The fake half's mix from a recipe's ``data.mix`` (defaults for keys it leaves out).

    ``real_fake`` is the probability that a fake draw is a real manipulated face (when the recipe
    has any); the rest are pseudo-fakes, self-blends and swaps in the ratio ``self_blend : swap``.
    Only the shares of :data:`MIX_KEYS` may be set; any other key is a typo in a recipe and fails
    loudly rather than training with the default by mistake.
    """
    unknown = set(shares) - set(MIX_KEYS)
    if unknown:
        raise ValueError(f"data.mix: unknown keys {sorted(unknown)}; known: {', '.join(MIX_KEYS)}")
    default = FaceMix()
    mix = FaceMix(
        self_blend=float(shares.get("self_blend", default.self_blend)),
        swap=float(shares.get("swap", default.swap)),
        real_fake=float(shares.get("real_fake", default.real_fake)),
    )
    if min(mix.self_blend, mix.swap) < 0 or mix.self_blend + mix.swap <= 0 or not 0 <= mix.real_fake <= 1:
        raise ValueError("data.mix: self_blend and swap >= 0, not both 0; real_fake between 0 and 1")
    return mix


class FaceForgerySet:
    """Batches of model-size crops from a pool of real faces and an optional pool of real fakes."""

    def __init__(
        self,
        real: FacePool,
        fakes: FacePool | None,
        margin: float,
        size: int,
        chain: CompressionChain,
        mix: FaceMix | None = None,
        real_weights: np.ndarray | None = None,
    ) -> None:
        if len(real) == 0:
            raise ValueError("the real face pool is empty")
        if real_weights is not None and real_weights.shape != (len(real),):
            raise ValueError("real_weights needs one probability per real face")
        self.real, self.fakes = real, fakes if fakes is not None and len(fakes) else None
        self.margin, self.size, self.chain = margin, size, chain
        self.mix = mix or FaceMix()
        self.real_weights = real_weights

    def _draw_real(self, rng: np.random.Generator) -> int:
        """One real face's index: uniform, or by ``real_weights`` (:func:`source_weights`)."""
        if self.real_weights is None:
            return int(rng.integers(len(self.real)))
        return int(rng.choice(len(self.real), p=self.real_weights))

    def _crop(self, context: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        return jitter_crop(context, self.real.context_margin, self.margin, self.size, rng)

    def pseudo_fake(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """A self-blend or a swap of real face ``index`` (context crop size)."""
        pool, mix = self.real, self.mix
        image, lm = pool.crops[index], pool.landmarks[index]
        if rng.random() < mix.self_blend / (mix.self_blend + mix.swap):
            return self_blend(image, lm, rng, mix.blend).image
        candidates = [int(c) for c in rng.integers(0, len(pool), mix.donor_candidates)]
        candidates = [c for c in candidates if pool.groups[c] != pool.groups[index]] or candidates
        donor = candidates[nearest_donor(lm, [pool.landmarks[c] for c in candidates])]
        return swap_blend(image, lm, pool.crops[donor], pool.landmarks[donor], rng, None).image

    def fake(self, rng: np.random.Generator) -> np.ndarray:
        """One fake context crop: a real manipulation (share ``mix.real_fake``) or a pseudo-fake."""
        if self.fakes is not None and rng.random() < self.mix.real_fake:
            return self.fakes.crops[int(rng.integers(len(self.fakes)))]
        return self.pseudo_fake(self._draw_real(rng), rng)

    def batch(self, size: int, rng: np.random.Generator) -> Batch:
        """``size`` crops (even: half real, half fake) through the shared compression chain."""
        images: list[np.ndarray] = []
        for _ in range(size // 2):
            images.append(self._crop(self.real.crops[self._draw_real(rng)], rng))
            images.append(self._crop(self.fake(rng), rng))
        labels = np.tile(np.asarray([0.0, 1.0], np.float32), size // 2)
        return Batch(self.chain.batch(images, rng), labels)

    def fixed(self, seed: int, limit: int | None = None) -> Batch:
        """A reproducible validation set: each real face real and pseudo-faked, plus the real fakes."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.real))[:limit]
        images, labels = [], []
        for index in order:
            images += [
                self._crop(self.real.crops[index], None),
                self._crop(self.pseudo_fake(int(index), rng), None),
            ]
            labels += [0.0, 1.0]
        if self.fakes is not None:
            images += [self._crop(c, None) for c in self.fakes.crops]
            labels += [1.0] * len(self.fakes)
        return Batch(images, np.asarray(labels, np.float32))
