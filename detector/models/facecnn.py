"""A compact plain CNN for face-forgery detection, for training on a CPU in minutes.

Measured on this project's shared, heavily loaded 2-core CPU, one training step of 32 crops at
128 px took 23-38 s for torchvision's EfficientNet-B0 (depthwise convolutions are slow to train on
CPU) against 5-8 s for a plain CNN, so the shipped face model is this plain CNN at 96 px;
``effnet_b0`` / ``effnet_b4`` stay registered for training where a GPU is present.
Five stages of 3x3 convolutions (batch norm, ReLU, max-pool) then global average pooling, dropout
and one logit (positive = manipulated). Early stages keep full resolution because self-blending
boundaries are a high-frequency cue.
"""

from __future__ import annotations

import torch
from torch import nn

from detector.models._registry import register_model


def _stage(cin: int, cout: int, convs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [
            nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class FaceCNN(nn.Module):
    """(N, 3, H, W) normalised crops -> (N, 1) fake logits."""

    def __init__(self, widths: tuple[int, ...] = (16, 24, 48, 64, 96), dropout: float = 0.3) -> None:
        super().__init__()
        stages: list[nn.Module] = []
        cin = 3
        for i, width in enumerate(widths):
            stages.append(_stage(cin, width, 1 if i == 0 else 2))
            cin = width
        self.features = nn.Sequential(*stages)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out


@register_model("facecnn")
def facecnn() -> nn.Module:
    """The compact face-forgery CNN (about 0.24 M parameters)."""
    return FaceCNN()
