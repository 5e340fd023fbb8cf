"""Face-forgery classifiers on torchvision's EfficientNet (trained here from scratch, one logit out).

``effnet_b0`` is the default (CPU-friendly); ``effnet_b4`` is the Self-Blended Images paper's
backbone. Both are built with ``weights=None``: no pretrained backbone is downloaded, the shipped
checkpoint holds every parameter. The single output is the fake logit (positive = manipulated).
"""

from __future__ import annotations

from torch import nn

from detector.models._registry import register_model


def _efficientnet(variant: str) -> nn.Module:
    from detector.faces.tvcompat import ensure_torchvision

    ensure_torchvision()
    from torchvision import models

    builder = getattr(models, f"efficientnet_{variant}")
    module: nn.Module = builder(weights=None, num_classes=1)
    return module


@register_model("effnet_b0")
def effnet_b0() -> nn.Module:
    """EfficientNet-B0, one output logit."""
    return _efficientnet("b0")


@register_model("effnet_b4")
def effnet_b4() -> nn.Module:
    """EfficientNet-B4, one output logit (the SBI paper's backbone; slow on CPU)."""
    return _efficientnet("b4")
