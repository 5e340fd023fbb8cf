"""Training tasks: build the training batches and the validation set a config names.

``task: face_v2``: face pools (:mod:`datasets.face_pool`) of real faces and real manipulations,
split by identity / clip group (``data.val_groups`` prefixes validate; UTKFace audit faces are held
out of both), batches of real faces against pseudo-fakes and real fakes (:mod:`datasets.face_training`).
``task: synthetic_v2``: image pools (:mod:`datasets.image_pool`), batches balanced over generator
families with format never the cue (:mod:`datasets.synthetic_training`). Validation sets are for
choosing the epoch only; the dev set is never read here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from datasets.batch import Batch
from datasets.face_pool import FacePool
from datasets.image_pool import ImagePool
from detector.models._manifest import InputConfig, ModelEntry, Source
from detector.models._registry import get_architecture, parse_model_name
from detector.models.base import Classifier
from detector.models.spec import InputSpec

TASK_KINDS = {"face_v2": "face_forgery", "synthetic_v2": "synthetic_image"}


class BatchSource(Protocol):
    """Anything that hands out training batches."""

    def batch(self, size: int, rng: np.random.Generator) -> Batch: ...


@dataclass
class TrainingData:
    """Training batches, a fixed validation set and how to wrap a module as its classifier."""

    train: BatchSource
    validation: Batch
    task_kind: str
    classifier: Callable[[nn.Module, torch.device], Classifier]


def entry_for(config: dict[str, Any]) -> ModelEntry:
    """A manifest entry for a model still in training (placeholder file and sha256)."""
    return ModelEntry(
        task=TASK_KINDS[config["task"]],
        arch=parse_model_name(config["name"])[0],
        input=InputConfig.model_validate(config["input"]),
        file="training.safetensors",
        sha256="0" * 64,
        source=Source(kind="shipped"),
        licence=str(config.get("licence", "")),
        training_data=str(config.get("training_data", "")),
    )


def _classifier_factory(config: dict[str, Any]) -> Callable[[nn.Module, torch.device], Classifier]:
    entry = entry_for(config)
    arch = get_architecture(entry.arch)

    def make(module: nn.Module, device: torch.device) -> Classifier:
        return arch.classifier(config["name"], entry, module, device)

    return make


def staged_sources(names: list[str], staged: Path, pools: Path) -> dict[str, str]:
    """Each named source's kind, once it is known (``datasets/sources.tsv``) and staged under
    ``staged`` (or its pool already built under ``pools``); else one line saying which and how to
    stage it (a misspelt name was a KeyError, an unstaged folder "no face was found in any item")."""
    from datasets.staging import read_sources

    kinds = {s.name: s.kind for s in read_sources()}
    unknown = [n for n in names if n not in kinds]
    if unknown:
        raise SystemExit(f"error: unknown training source(s) {unknown}; known: {', '.join(kinds)}")

    def pooled(name: str) -> bool:  # cached_pool's <name>_<size>.npz, cached_images' images_<name>_<side>.pkl
        return any(pools.glob(f"{name}_*.npz")) or any(pools.glob(f"images_{name}_*.pkl"))

    missing = [n for n in names if not (staged / n).is_dir() and not pooled(n)]
    if missing:
        command = f"python -m datasets.staging stage --only {' '.join(missing)} --out {staged}"
        raise SystemExit(f"error: {', '.join(missing)} not staged under {staged}: run `{command}`")
    return {n: kinds[n] for n in names}


def _pools(names: list[str], data: dict[str, Any]) -> FacePool:
    from datasets.face_pool import cached_pool

    staged, out = Path(data["staged"]), Path(data["pools"])
    kinds = staged_sources(names, staged, out)
    frames, size = int(data.get("frames_per_clip", 32)), int(data.get("context_size", 224))
    return FacePool.concat([cached_pool(n, kinds[n], staged / n, out, frames, size) for n in names])


def _val_pools(roots: list[dict[str, Any]], data: dict[str, Any]) -> FacePool:
    from datasets.face_pool import cached_pool

    out, frames, size = (
        Path(data["pools"]),
        int(data.get("frames_per_clip", 32)),
        int(data.get("context_size", 224)),
    )
    return FacePool.concat(
        [cached_pool(r["name"], r["kind"], Path(r["root"]), out, frames, size) for r in roots]
    )


def _face_v2_data(config: dict[str, Any], spec: InputSpec) -> TrainingData:
    from datasets.compress import CompressionChain
    from datasets.face_training import FaceForgerySet, face_mix, is_audit_face, source_weights

    data = config["data"]
    if spec.crop_margin is None:
        raise SystemExit("a face model config needs input.crop_margin")
    real, fakes = _pools(data["real"], data), _pools(data["fake"], data)
    held = tuple(data.get("val_groups", []))
    keep_real = [i for i, g in enumerate(real.groups) if not is_audit_face(g) and not g.startswith(held)]
    val_real = [i for i, g in enumerate(real.groups) if g.startswith(held)]
    train_fake = [i for i, g in enumerate(fakes.groups) if not g.startswith(held)]
    val_fake = [i for i, g in enumerate(fakes.groups) if g.startswith(held)]
    extras = [_val_pools(data["val_roots"], data)] if data.get("val_roots") else []
    val_pool = FacePool.concat(
        [real.subset(val_real), *(e.subset(np.flatnonzero(e.labels == 0)) for e in extras)]
    )
    val_fakes = FacePool.concat(
        [fakes.subset(val_fake), *(e.subset(np.flatnonzero(e.labels == 1)) for e in extras)]
    )
    chain = CompressionChain(**data.get("chain", {}))
    size = spec.size[0]
    train_real = real.subset(keep_real)
    weights = source_weights(train_real.groups, dict(data.get("real_shares", {})))
    train = FaceForgerySet(
        train_real,
        fakes.subset(train_fake),
        spec.crop_margin,
        size,
        chain,
        mix=face_mix(data.get("mix", {})),
        real_weights=weights,
    )
    val = FaceForgerySet(val_pool, val_fakes, spec.crop_margin, size, chain).fixed(
        int(config.get("seed", 0)), int(data.get("val_limit", 600))
    )
    print(
        f"faces: {len(keep_real)} real + {len(train_fake)} manipulated for training; "
        f"validation {len(val.labels)} crops ({int(val.labels.sum())} fake)",
        flush=True,
    )
    return TrainingData(train, val, TASK_KINDS["face_v2"], _classifier_factory(config))


def _image_pool(data: dict[str, Any]) -> ImagePool:
    from datasets.image_pool import cached_images
    from datasets.images import load_rgb

    staged, out, max_side = Path(data["staged"]), Path(data["pools"]), int(data.get("max_side", 768))
    kinds = staged_sources(list(data["sources"]), staged, out)
    dev_faces = (
        [load_rgb(p) for p in sorted(Path(data["dev_faces"]).glob("sfhq*"))] if data.get("dev_faces") else []
    )
    pool = ImagePool()
    for name in data["sources"]:
        pool.extend(cached_images(name, kinds[name], staged / name, out, max_side, dev_faces))
    for extra in data.get("extra_roots", []):
        pool.extend(
            cached_images(extra["name"], extra["kind"], Path(extra["root"]), out, max_side, dev_faces)
        )
    return pool


def _synthetic_v2_data(config: dict[str, Any], spec: InputSpec) -> TrainingData:
    from datasets.synthetic_training import FormatChain, SyntheticSet

    data = config["data"]
    pool = _image_pool(data)
    held = tuple(data.get("val_groups", []))
    train, val = ImagePool(), ImagePool()
    from datasets.face_training import is_audit_face

    for item in zip(pool.images, pool.labels, pool.families, pool.groups, strict=True):
        if not is_audit_face(item[3]):
            (val if item[3].startswith(held) else train).add(*item)
    chain = FormatChain(**data.get("chain", {}))
    size = spec.size[0]
    low, high = (float(x) for x in data.get("upscale_range", (1.3, 2.5)))
    train_set = SyntheticSet(
        train,
        size,
        chain,
        float(data.get("simulated_share", 0.2)),
        float(data.get("upscale_prob", 0.0)),
        (low, high),
    )
    families = {f: train.families.count(f) for f in sorted(set(train.families))}
    print(f"images: {len(train)} train ({families}), {len(val)} validation", flush=True)
    return TrainingData(
        train_set,
        SyntheticSet(val, size, chain).fixed(float(data.get("val_upscaled", 0.0))),
        TASK_KINDS["synthetic_v2"],
        _classifier_factory(config),
    )


def build_data(config: dict[str, Any], spec: InputSpec) -> TrainingData:
    """The :class:`TrainingData` for ``config["task"]`` (``face_sbi`` or ``synthetic_npr``)."""
    if config["task"] == "face_v2":
        return _face_v2_data(config, spec)
    if config["task"] == "synthetic_v2":
        return _synthetic_v2_data(config, spec)
    raise SystemExit(f"unknown task {config['task']!r}; known: {', '.join(TASK_KINDS)}")
