"""The classifier contract: preprocessing from the checkpoint's spec, a torch forward, logits out.

Every classifier answers the same question with the same sign: ``predict(images)`` returns one
float32 logit per image, the log-odds that the image (a face crop or a whole frame) is manipulated
or synthetic. Positive means fake. How pixels become a tensor (size, interpolation, value range,
mean/std, crop margin) belongs to the checkpoint and is read from its manifest entry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import cv2
import numpy as np
import torch
from torch import nn

from detector.errors import InvalidRequest

if TYPE_CHECKING:
    from detector.models._manifest import ModelEntry

Interpolation = Literal["area", "linear", "cubic", "nearest"]

_CV2_INTERPOLATION: dict[str, int] = {
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}


@dataclass(frozen=True)
class InputSpec:
    """What a checkpoint expects as input.

    ``size`` is (height, width). Pixels (uint8 RGB) are mapped linearly from [0, 255] onto
    ``value_range`` and then normalised per channel with ``mean`` / ``std``. ``crop_margin`` is the
    square face-crop side divided by the detector's face-box side for face models, ``None`` for
    models that look at whole images. ``interpolation`` ``"area"`` means OpenCV's INTER_AREA when
    shrinking and INTER_LINEAR when enlarging.
    """

    size: tuple[int, int]
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    crop_margin: float | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    interpolation: Interpolation = "area"
    channel_order: Literal["RGB"] = "RGB"

    def resize(self, image: np.ndarray) -> np.ndarray:
        """``image`` resized to ``size`` with the checkpoint's interpolation (no-op when equal)."""
        height, width = self.size
        if image.shape[:2] == (height, width):
            return image
        if self.interpolation == "area":
            shrinking = image.shape[0] * image.shape[1] > height * width
            flag = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        else:
            flag = _CV2_INTERPOLATION[self.interpolation]
        return np.asarray(cv2.resize(image, (width, height), interpolation=flag))

    def to_array(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """A float32 NCHW batch: resized, scaled to ``value_range``, normalised."""
        lo, hi = self.value_range
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        batch = np.empty((len(images), 3, *self.size), dtype=np.float32)
        for i, image in enumerate(images):
            _check_image(image, i)
            pixels = self.resize(image).astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
            batch[i] = ((pixels - mean) / std).transpose(2, 0, 1)
        return batch


def _check_image(image: np.ndarray, index: int) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise InvalidRequest(f"image {index}: expected an HxWx3 uint8 RGB array, got shape {shape} {dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidRequest(f"image {index}: empty image of shape {image.shape}")


class Classifier(ABC):
    """A loaded model: ``predict`` = ``preprocess`` -> ``forward`` (no grad, on ``device``) -> logits.

    Subclasses implement :meth:`forward`; they may override :meth:`preprocess` or :meth:`heatmap`.
    Batches larger than ``max_batch`` are run in chunks so memory stays bounded.
    """

    max_batch: ClassVar[int] = 64

    def __init__(self, name: str, entry: ModelEntry, module: nn.Module, device: torch.device) -> None:
        self.name = name
        self.entry = entry
        self.spec: InputSpec = entry.input.to_spec()
        self.device = device
        self.module = module.to(device).eval()

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """RGB uint8 HxWx3 arrays -> a float32 NCHW tensor on ``device``, as the checkpoint needs."""
        return torch.from_numpy(self.spec.to_array(images)).to(self.device)

    @abstractmethod
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Preprocessed batch -> logits of shape (N,), positive = manipulated or synthetic."""

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Fake-logits (float32, shape (N,)) for RGB uint8 images of any size."""
        out = np.empty(len(images), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(images), self.max_batch):
                chunk = images[start : start + self.max_batch]
                logits = self.forward(self.preprocess(chunk))
                out[start : start + len(chunk)] = logits.reshape(-1).float().cpu().numpy()
        return out

    def heatmap(self, images: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        """Per-image maps of where the evidence is, or ``None`` when the model has none."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={self.device})"


class TorchClassifier(Classifier):
    """The common case: the module maps a batch to one raw logit per image.

    ``entry.raw_logit_positive`` says which class the network's raw pre-sigmoid output points to;
    when it is ``"real"`` the logit is negated so that positive always means fake.
    """

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        raw = self.module(batch).reshape(-1)
        return -raw if self.entry.raw_logit_positive == "real" else raw
