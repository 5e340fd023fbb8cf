"""Decorator registry of architectures and weight importers; ``create_model("arch.tag")``.

An architecture registers a factory returning an untrained ``nn.Module``; a model is a manifest
entry ``arch.tag`` whose ``arch`` is registered. Registering a name twice is an error, never an
overwrite. On first use of the registry (not at package import) every module of the
``detector.models`` package is imported, so an architecture registers by living there.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from detector.errors import DuplicateModel, ModelError, UnknownModel
from detector.models._manifest import Manifest, ModelEntry, load_manifest
from detector.models.base import Classifier, TorchClassifier

ModuleFactory = Callable[[], nn.Module]
Converter = Callable[[Path, ModelEntry], dict[str, np.ndarray]]
F = TypeVar("F", bound=ModuleFactory)
C = TypeVar("C", bound=Converter)

ARCHITECTURE_PACKAGE = "detector.models"

_NAME_RE = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z0-9][a-z0-9_]*)$")
_ARCH_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: its factory and the classifier class that wraps it."""

    name: str
    factory: ModuleFactory
    classifier: type[Classifier]


_ARCHS: dict[str, Architecture] = {}
_IMPORTERS: dict[str, Converter] = {}
_builtin_loaded = False


def register_model(arch: str, *, classifier: type[Classifier] = TorchClassifier) -> Callable[[F], F]:
    """Register ``factory() -> nn.Module`` as architecture ``arch``; a second ``arch`` raises."""
    if not _ARCH_RE.fullmatch(arch):
        raise ModelError(f"architecture name {arch!r} must be lower case [a-z0-9_], starting with a letter")

    def decorate(factory: F) -> F:
        if arch in _ARCHS:
            raise DuplicateModel(f"architecture {arch!r} is already registered by {_ARCHS[arch].factory!r}")
        _ARCHS[arch] = Architecture(arch, factory, classifier)
        return factory

    return decorate


def register_importer(family: str) -> Callable[[C], C]:
    """Register ``convert(upstream_path, entry) -> state_dict arrays`` for weights family ``family``."""

    def decorate(convert: C) -> C:
        if family in _IMPORTERS:
            raise DuplicateModel(f"weights importer {family!r} is already registered")
        _IMPORTERS[family] = convert
        return convert

    return decorate


def _ensure_builtin() -> None:
    """Import every module of :data:`ARCHITECTURE_PACKAGE` once (their decorators register)."""
    global _builtin_loaded
    if not _builtin_loaded:
        package = importlib.import_module(ARCHITECTURE_PACKAGE)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{ARCHITECTURE_PACKAGE}.{info.name}")
        _builtin_loaded = True


def list_architectures() -> list[str]:
    """Registered architecture names, sorted."""
    _ensure_builtin()
    return sorted(_ARCHS)


def get_architecture(arch: str) -> Architecture:
    """The registered architecture ``arch``; :class:`UnknownModel` otherwise."""
    _ensure_builtin()
    try:
        return _ARCHS[arch]
    except KeyError:
        raise UnknownModel(f"unknown architecture {arch!r}; known: {', '.join(sorted(_ARCHS))}") from None


def get_importer(family: str) -> Converter:
    """The converter registered for ``family``; :class:`UnknownModel` otherwise."""
    _ensure_builtin()
    try:
        return _IMPORTERS[family]
    except KeyError:
        known = ", ".join(sorted(_IMPORTERS))
        raise UnknownModel(f"unknown weights family {family!r}; known: {known}") from None


def parse_model_name(name: str) -> tuple[str, str]:
    """``"arch.tag"`` -> ``(arch, tag)``; anything else (case, spaces, extra dots) is UnknownModel."""
    match = _NAME_RE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise UnknownModel(f"model name {name!r} is not of the form 'arch.tag' (lower case, [a-z0-9_])")
    return match.group(1), match.group(2)


def list_models(pattern: str | None = None, *, manifest: Manifest | None = None) -> list[str]:
    """Manifest entries ``arch.tag`` whose architecture is registered, optionally fnmatch-filtered."""
    _ensure_builtin()
    entries = (manifest or load_manifest()).models
    names = sorted(n for n, e in entries.items() if e.arch in _ARCHS)
    return [n for n in names if pattern is None or fnmatch.fnmatchcase(n, pattern)]


def get_entry(name: str, *, manifest: Manifest | None = None) -> ModelEntry:
    """The manifest entry of model ``name``; :class:`UnknownModel` listing known names otherwise
    (a name not even of the form ``arch.tag`` too: it gave a message without them)."""
    known = list_models(manifest=manifest)
    if name not in known:
        raise UnknownModel(f"unknown model {name!r}; known: {', '.join(known)}")
    parse_model_name(name)
    return (manifest or load_manifest()).models[name]


def create_model(
    name: str,
    *,
    weights_dir: Path | None = None,
    device: str | torch.device = "cpu",
    pretrained: bool = True,
    manifest: Manifest | None = None,
    precision: str = "auto",
    dtype: torch.dtype | None = None,
) -> Classifier:
    """Build model ``name`` on ``device``; with ``pretrained`` its verified weights are loaded.

    ``weights_dir`` defaults to the ``models.weights_dir`` setting; ``device`` may be ``"auto"``.
    The model runs in ``dtype`` when given, else in what ``precision`` (the ``runtime.precision``
    setting) picks for this device and entry (:func:`detector.runtime.model_dtype`).
    """
    from detector.runtime import model_dtype, select_device

    entry = get_entry(name, manifest=manifest)
    arch = get_architecture(entry.arch)
    module = arch.factory()
    if pretrained:
        from safetensors.torch import load_file

        from detector.models._weights import default_weights_dir, resolve_weights

        path = resolve_weights(entry, weights_dir or default_weights_dir())
        try:
            module.load_state_dict(load_file(str(path)), strict=True)
        except RuntimeError as exc:
            raise ModelError(f"weights {path} do not fit architecture {entry.arch!r}: {exc}") from exc
    dev = select_device(device) if isinstance(device, str) else device
    # built for inference: in eval mode before the classifier sees it, so a classifier that runs an
    # inference copy (``LiteClassifier`` folds batch norms) does so; a fresh module is in train mode
    if dtype is None:
        dtype = model_dtype(precision, dev, entry.half_precision)
    return arch.classifier(name, entry, module.eval(), dev, dtype)
