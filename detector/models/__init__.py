"""Classifiers: the contract (``base``), input specs (``spec``), architectures, and the registry,
weights manifest and weight files as ``_``-prefixed infrastructure.

``create_model("meso4.df")`` builds a registered architecture and loads its verified weights;
``list_models()`` names every model the manifest lists for a registered architecture. Nothing is
imported here eagerly: reading the manifest (``detector.models._manifest``) never imports torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Classifier": "detector.models.base",
    "TorchClassifier": "detector.models.base",
    "InputSpec": "detector.models.spec",
    "create_model": "detector.models._registry",
    "list_architectures": "detector.models._registry",
    "list_models": "detector.models._registry",
    "parse_model_name": "detector.models._registry",
    "register_importer": "detector.models._registry",
    "register_model": "detector.models._registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Load the exported names on first use (PEP 562)."""
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'detector.models' has no attribute {name!r}")
