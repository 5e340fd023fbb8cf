"""A training or validation batch: RGB uint8 images and their labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Batch:
    """RGB uint8 images and their float labels (1 = fake), preprocessed later by the model's own spec."""

    images: list[np.ndarray]
    labels: np.ndarray
