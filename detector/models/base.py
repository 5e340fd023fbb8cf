"""The classifier contract: preprocessing from the checkpoint's spec, a torch forward, logits out.

Every classifier answers the same question with the same sign: ``predict(images)`` returns one
float32 logit per image, the log-odds that the image (a face crop or a whole frame) is manipulated
or synthetic. Positive means fake. How pixels become a tensor (size, interpolation, value range,
mean/std, crop margin) belongs to the checkpoint and is read from its manifest entry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from detector.models.spec import InputSpec

if TYPE_CHECKING:
    from detector.models._manifest import ModelEntry


class Classifier(ABC):
    """A loaded model: ``predict`` = ``preprocess`` -> ``forward`` (no grad, on ``device``, in
    ``dtype``) -> float32 logits.

    Subclasses implement :meth:`forward`; they may override :meth:`preprocess` (heat maps: ``_gradcam``).
    Batches are run in chunks (:attr:`chunk`): on a GPU of ``max_batch`` so memory stays bounded, on
    a CPU of ``cpu_batch``, small enough for the activations to stay in cache.
    """

    max_batch: ClassVar[int] = 64
    cpu_batch: ClassVar[int] = 8
    """On 2 cores the face model ran 32 crops at 80-100 crops/s in one pass and 115-185 in passes of 8."""

    def __init__(
        self,
        name: str,
        entry: ModelEntry,
        module: nn.Module,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.name = name
        self.entry = entry
        self.spec: InputSpec = entry.input.to_spec()
        self.device = device
        self.dtype = dtype
        self.module = self._for_inference(module).to(device=device, dtype=dtype).eval()

    def _for_inference(self, module: nn.Module) -> nn.Module:
        """The module :meth:`predict` runs, before it moves to ``device`` and ``dtype``: ``module``
        itself, unless a subclass runs a transformed copy (``LiteClassifier`` folds batch norms)."""
        return module

    def explainer(self) -> Classifier:
        """The classifier whose module heat maps read (Grad-CAM hooks its last convolution): this
        one, unless a subclass runs a transformed copy of the trained module (``LiteClassifier``)."""
        return self

    @property
    def chunk(self) -> int:
        """Images per forward pass on this model's device."""
        return self.max_batch if self.device.type == "cuda" else min(self.cpu_batch, self.max_batch)

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """RGB uint8 HxWx3 arrays -> an NCHW tensor on ``device`` in the module's dtype, as the
        checkpoint needs (normalised in float32 first, so float16 rounds only the final values)."""
        return torch.from_numpy(self.spec.to_array(images)).to(self.device, self.dtype)

    @abstractmethod
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Preprocessed batch -> logits of shape (N,), positive = manipulated or synthetic."""

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Fake-logits (float32, shape (N,)) for RGB uint8 images of any size."""
        out = np.empty(len(images), dtype=np.float32)
        with torch.inference_mode():
            step = self.chunk
            for start in range(0, len(images), step):
                chunk = images[start : start + step]
                logits = self.forward(self.preprocess(chunk))
                out[start : start + len(chunk)] = logits.reshape(-1).float().cpu().numpy()
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={self.device}, dtype={self.dtype})"


class TorchClassifier(Classifier):
    """The common case: the module maps a batch to one raw logit per image.

    ``entry.raw_logit_positive`` says which class the network's raw pre-sigmoid output points to;
    when it is ``"real"`` the logit is negated so that positive always means fake.
    """

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        raw = self.module(batch).reshape(-1)
        return -raw if self.entry.raw_logit_positive == "real" else raw
