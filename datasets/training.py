"""Training sets for ``scripts/train.py``: real samples and pseudo-fakes, drawn batch by batch.

Each set hands out ``(images, labels)`` batches of RGB uint8 arrays (label 1 = fake) that the
model's own :class:`~detector.models.base.InputSpec` then preprocesses, so training sees exactly
the pixels inference sees. Half of every batch is real, half pseudo-fake, and both halves pass
through the same :class:`~datasets.augment.SharedAugment`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from datasets.artefacts import random_fake
from datasets.augment import SharedAugment
from datasets.face_cache import FaceCache, center_crop
from datasets.self_blend import SelfBlendConfig, self_blend


def split_by_group(groups: Sequence[str], val_prefixes: Sequence[str]) -> tuple[list[int], list[int]]:
    """Indices (train, val): a sample is validation when its group starts with a ``val_prefixes`` item."""
    val = [i for i, g in enumerate(groups) if any(g.startswith(p) for p in val_prefixes)]
    chosen = set(val)
    return [i for i in range(len(groups)) if i not in chosen], val


@dataclass
class Batch:
    """RGB uint8 images and their float labels (1 = fake)."""

    images: list[np.ndarray]
    labels: np.ndarray


class SelfBlendSet:
    """Real face crops and their self-blended pseudo-fakes, cut at the model's margin and size."""

    def __init__(
        self,
        cache: FaceCache,
        margin: float,
        size: int,
        augment: SharedAugment,
        blend: SelfBlendConfig | None = None,
    ) -> None:
        if len(cache) == 0:
            raise ValueError("the face cache is empty")
        self.cache, self.margin, self.size = cache, margin, size
        self.augment, self.blend = augment, blend or SelfBlendConfig()

    def _crop(self, context: np.ndarray) -> np.ndarray:
        return center_crop(context, self.cache.context_margin, self.margin, self.size)

    def pair(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(real crop, self-blended crop) of face ``index``, before the shared augmentation."""
        c = self.cache
        fake = self_blend(c.crops[index], c.boxes[index], c.landmarks[index], rng, self.blend).image
        return self._crop(c.crops[index]), self._crop(fake)

    def batch(self, size: int, rng: np.random.Generator) -> Batch:
        """``size`` samples (even: half real, half fake), each from a randomly drawn face."""
        images: list[np.ndarray] = []
        labels: list[float] = []
        for index in rng.integers(0, len(self.cache), size // 2):
            real, fake = self.pair(int(index), rng)
            images += [self.augment(real, rng), self.augment(fake, rng)]
            labels += [0.0, 1.0]
        return Batch(images, np.asarray(labels, dtype=np.float32))

    def fixed(self, seed: int) -> Batch:
        """A reproducible evaluation set: every face once real and once self-blended (no augmentation)."""
        rng = np.random.default_rng(seed)
        images: list[np.ndarray] = []
        labels: list[float] = []
        for index in range(len(self.cache)):
            real, fake = self.pair(index, rng)
            images += [real, fake]
            labels += [0.0, 1.0]
        return Batch(images, np.asarray(labels, dtype=np.float32))


class ArtefactSet:
    """Native-resolution patches of real photos and of their simulated up-sampling (new draw each time)."""

    def __init__(self, images: Sequence[np.ndarray], patch: int, augment: SharedAugment) -> None:
        self.patch, self.augment = patch, augment
        self.real = [im for im in images if min(im.shape[:2]) >= patch]
        if not self.real:
            raise ValueError(f"no training image is at least {patch} px on each side")

    def _patch(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        image = self.augment(image, rng)
        y = int(rng.integers(0, (image.shape[0] - self.patch) // 8 + 1)) * 8
        x = int(rng.integers(0, (image.shape[1] - self.patch) // 8 + 1)) * 8
        return image[y : y + self.patch, x : x + self.patch]

    def batch(self, size: int, rng: np.random.Generator) -> Batch:
        """``size`` patches: half from real photos, half from simulated fakes of other draws."""
        images: list[np.ndarray] = []
        labels: list[float] = []
        for _ in range(size // 2):
            images.append(self._patch(self.real[int(rng.integers(len(self.real)))], rng))
            fake = random_fake(self.real[int(rng.integers(len(self.real)))], rng)
            images.append(self._patch(fake, rng))
            labels += [0.0, 1.0]
        return Batch(images, np.asarray(labels, dtype=np.float32))

    def fixed(self, seed: int) -> Batch:
        """Every photo whole and one reproducible simulated fake of it (the classifier tiles them)."""
        rng = np.random.default_rng(seed)
        fakes = [random_fake(im, rng) for im in self.real]
        labels = [0.0] * len(self.real) + [1.0] * len(fakes)
        return Batch([*self.real, *fakes], np.asarray(labels, dtype=np.float32))
