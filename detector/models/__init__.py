"""Classifiers: the contract, the registry, the weights manifest and loading.

``create_model("meso4.df")`` builds a registered architecture and loads its verified weights;
``list_models()`` names every model the manifest lists for a registered architecture.
"""

from detector.models._registry import (
    create_model,
    list_architectures,
    list_models,
    parse_model_name,
    register_importer,
    register_model,
)
from detector.models.base import Classifier, InputSpec, TorchClassifier

__all__ = [
    "Classifier",
    "InputSpec",
    "TorchClassifier",
    "create_model",
    "list_architectures",
    "list_models",
    "parse_model_name",
    "register_importer",
    "register_model",
]
