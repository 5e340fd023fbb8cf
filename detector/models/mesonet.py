"""MesoNet (Afchar et al., WIFS 2018): Meso4 and MesoInception4 in PyTorch, and their importer.

The layers match the authors' Keras code (DariusAf/MesoNet ``classifiers.py``) exactly: 256x256
RGB in [0, 1]; Conv2D "same" + ReLU, BatchNormalization (epsilon 1e-3), MaxPooling "same"; a
channels-last Flatten; Dropout, Dense 16, LeakyReLU(0.1), Dropout, Dense 1 (sigmoid in Keras).
The modules return the pre-sigmoid value. The authors trained with Keras'
``flow_from_directory(class_mode="binary")`` on folders ``df`` / ``real`` (alphabetical: df=0,
real=1), so that value is the log-odds of *real*; the manifest says so with
``raw_logit_positive = "real"`` and the classifier negates it.

Note: the authors' ``Meso4_*.h5`` files list no ``leaky_re_lu`` layer (their
``MesoInception_*.h5`` do), so the Meso4 that saved them may have had a linear Dense 16. The
weights do not record activations; this module follows ``classifiers.py``, which is how the
authors' own example code runs these files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as nnf

from detector.errors import ModelError
from detector.models._keras_h5 import KERAS_BN_EPSILON, keras_to_state_dict, read_keras_h5
from detector.models._manifest import ModelEntry
from detector.models._registry import get_architecture, register_importer, register_model

INPUT_SIDE = 256


def _same_conv(cin: int, cout: int, kernel: int, dilation: int = 1) -> nn.Conv2d:
    """Keras ``padding="same"`` for stride 1 and an odd kernel: symmetric padding."""
    return nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)


def _same_pool(size: int) -> nn.MaxPool2d:
    """Keras MaxPooling2D ``padding="same"`` (stride = pool size): windows may overhang the end."""
    return nn.MaxPool2d(size, ceil_mode=True)


class ConvBlock(nn.Module):
    """Conv2D(same, ReLU) -> BatchNorm -> MaxPool(same)."""

    def __init__(self, cin: int, cout: int, kernel: int, pool: int) -> None:
        super().__init__()
        self.conv = _same_conv(cin, cout, kernel)
        self.bn = nn.BatchNorm2d(cout, eps=KERAS_BN_EPSILON)
        self.pool = _same_pool(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.bn(nnf.relu(self.conv(x))))


class InceptionLayer(nn.Module):
    """The authors' InceptionLayer(a, b, c, d): 1x1 | 1x1,3x3 | 1x1,3x3 d2 | 1x1,3x3 d3, concatenated."""

    def __init__(self, cin: int, a: int, b: int, c: int, d: int) -> None:
        super().__init__()
        self.b1 = _same_conv(cin, a, 1)
        self.b2_1 = _same_conv(cin, b, 1)
        self.b2_2 = _same_conv(b, b, 3)
        self.b3_1 = _same_conv(cin, c, 1)
        self.b3_2 = _same_conv(c, c, 3, dilation=2)
        self.b4_1 = _same_conv(cin, d, 1)
        self.b4_2 = _same_conv(d, d, 3, dilation=3)
        self.out_channels = a + b + c + d

    keras_convs = ("b1", "b2_1", "b2_2", "b3_1", "b3_2", "b4_1", "b4_2")
    """Conv layers in the order the Keras code creates them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = nnf.relu(self.b1(x))
        x2 = nnf.relu(self.b2_2(nnf.relu(self.b2_1(x))))
        x3 = nnf.relu(self.b3_2(nnf.relu(self.b3_1(x))))
        x4 = nnf.relu(self.b4_2(nnf.relu(self.b4_1(x))))
        return torch.cat([x1, x2, x3, x4], dim=1)


class MesoHead(nn.Module):
    """Flatten (channels-last, like Keras) -> Dropout -> Dense 16 -> LeakyReLU(0.1) -> Dropout -> Dense 1."""

    def __init__(self, features: int = 16 * 8 * 8) -> None:
        super().__init__()
        self.drop1 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(features, 16)
        self.drop2 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1).flatten(1)
        x = nnf.leaky_relu(self.fc1(self.drop1(x)), negative_slope=0.1)
        return self.fc2(self.drop2(x))


class Meso4(nn.Module):
    """Meso-4: four conv blocks (8@3x3, 8@5x5, 16@5x5, 16@5x5; pools 2, 2, 2, 4) and the head."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = ConvBlock(3, 8, 3, 2)
        self.block2 = ConvBlock(8, 8, 5, 2)
        self.block3 = ConvBlock(8, 16, 5, 2)
        self.block4 = ConvBlock(16, 16, 5, 4)
        self.head = MesoHead()

    def keras_order(self) -> dict[str, list[str]]:
        """Torch prefixes per Keras layer kind, in Keras creation order."""
        blocks = [f"block{i}" for i in range(1, 5)]
        return {
            "conv2d": [f"{b}.conv" for b in blocks],
            "batch_normalization": [f"{b}.bn" for b in blocks],
            "dense": ["head.fc1", "head.fc2"],
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 256, 256) in [0, 1] -> (N, 1) pre-sigmoid log-odds of *real*."""
        return self.head(self.block4(self.block3(self.block2(self.block1(x)))))


class MesoInception4(nn.Module):
    """MesoInception-4: InceptionLayer(1,4,4,2), InceptionLayer(2,4,4,2), two 16@5x5 blocks, head."""

    def __init__(self) -> None:
        super().__init__()
        self.inception1 = InceptionLayer(3, 1, 4, 4, 2)
        self.bn1 = nn.BatchNorm2d(self.inception1.out_channels, eps=KERAS_BN_EPSILON)
        self.inception2 = InceptionLayer(self.inception1.out_channels, 2, 4, 4, 2)
        self.bn2 = nn.BatchNorm2d(self.inception2.out_channels, eps=KERAS_BN_EPSILON)
        self.pool = _same_pool(2)
        self.block3 = ConvBlock(self.inception2.out_channels, 16, 5, 2)
        self.block4 = ConvBlock(16, 16, 5, 4)
        self.head = MesoHead()

    def keras_order(self) -> dict[str, list[str]]:
        """Torch prefixes per Keras layer kind, in Keras creation order."""
        convs = [f"{inc}.{c}" for inc in ("inception1", "inception2") for c in InceptionLayer.keras_convs]
        return {
            "conv2d": [*convs, "block3.conv", "block4.conv"],
            "batch_normalization": ["bn1", "bn2", "block3.bn", "block4.bn"],
            "dense": ["head.fc1", "head.fc2"],
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 256, 256) in [0, 1] -> (N, 1) pre-sigmoid log-odds of *real*."""
        x = self.pool(self.bn1(self.inception1(x)))
        x = self.pool(self.bn2(self.inception2(x)))
        return self.head(self.block4(self.block3(x)))


@register_model("meso4")
def meso4() -> nn.Module:
    """An untrained Meso4."""
    return Meso4()


@register_model("mesoinception4")
def mesoinception4() -> nn.Module:
    """An untrained MesoInception4."""
    return MesoInception4()


@register_importer("mesonet")
def convert_mesonet(h5_path: Path, entry: ModelEntry) -> dict[str, np.ndarray]:
    """The authors' Keras HDF5 weights -> a state dict (numpy) for ``entry.arch``."""
    module = get_architecture(entry.arch).factory()
    if not isinstance(module, Meso4 | MesoInception4):
        raise ModelError(f"the mesonet importer cannot convert architecture {entry.arch!r}")
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    return keras_to_state_dict(read_keras_h5(h5_path), module.keras_order(), shapes)
