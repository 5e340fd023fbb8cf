"""Shipped models as trained, for tests that compare what the service runs with the weights."""

from __future__ import annotations

from torch import nn


def trained_module(name: str) -> nn.Module:
    """Model ``name``'s architecture with its shipped weights, in eval mode and untransformed
    (``create_model`` hands its classifier this module, which may run a folded copy of it)."""
    from safetensors.torch import load_file

    from detector.models._manifest import load_manifest
    from detector.models._registry import get_architecture
    from detector.models._weights import shipped_dir

    entry = load_manifest().models[name]
    module = get_architecture(entry.arch).factory()
    module.load_state_dict(load_file(str(shipped_dir() / entry.file)), strict=True)
    return module.eval()
