"""Training a detector from a YAML config (``python -m scripts.train --config CFG --out RUN_DIR``).

Seeded and resumable (``--resume`` continues from ``RUN_DIR/last.pt``: model, optimiser,
scheduler, random states, epoch). Each epoch logs its mean loss and the validation AUC to
``RUN_DIR/log.jsonl``; the best epoch by validation AUC is exported to
``RUN_DIR/<arch>.<tag>.safetensors`` with a ready-to-paste manifest entry in
``RUN_DIR/manifest_entry.toml`` (its sha256 and validation metrics are printed too).
The task-specific data comes from :mod:`datasets.tasks`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from sklearn.metrics import roc_auc_score
from torch import nn
from tqdm import tqdm

from datasets.tasks import TrainingData, build_data
from detector.models._manifest import InputConfig
from detector.models._registry import get_architecture, parse_model_name
from detector.models.spec import InputSpec


@dataclass
class TrainResult:
    """The exported weights file, its sha256, validation metrics and the exported module itself."""

    file: Path
    sha256: str
    metrics: dict[str, float]
    module: nn.Module


@dataclass
class RunState:
    """What a checkpoint restores."""

    epoch: int = 0
    best_auc: float = -1.0
    best_epoch: int = -1
    capped_steps: int = 0
    """The fewest steps an epoch ran under ``--max-steps`` (0: every epoch ran in full)."""


def load_config(path: Path) -> dict[str, Any]:
    """The YAML config as a dict (must name ``task``, ``name``, ``input``, ``data``, ``train``)."""
    if not path.is_file():
        raise SystemExit(f"error: no config file {path}")
    with open(path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    if not isinstance(config, dict):
        raise SystemExit(f"error: {path} is not a YAML mapping of task, name, input, data, train")
    missing = [k for k in ("task", "name", "input", "data", "train") if k not in config]
    if missing:
        raise SystemExit(f"{path}: config lacks {', '.join(missing)}")
    return dict(config)


def input_spec(config: dict[str, Any]) -> InputSpec:
    """The model's input spec from the config's ``input`` table (validated like the manifest)."""
    return InputConfig.model_validate(config["input"]).to_spec()


def set_seed(seed: int) -> None:
    """Seed torch (CPU and CUDA) for reproducible initialisation and dropout."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def score(
    module: nn.Module, data: TrainingData, images: list[np.ndarray], device: torch.device
) -> np.ndarray:
    """Per-image logits exactly as the registered classifier computes them (eval mode, no grad)."""
    module.eval()
    classifier = data.classifier(module, device)
    return classifier.predict(images)


def train_step(
    module: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module
) -> float:
    """One optimisation step; returns the batch loss."""
    module.train()
    loss: torch.Tensor = loss_fn(module(x).reshape(-1), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def save_checkpoint(
    path: Path,
    module: nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    state: RunState,
    rng: np.random.Generator,
) -> None:
    """Everything needed to resume, written atomically."""
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": module.state_dict(),
            "opt": opt.state_dict(),
            "sched": sched.state_dict(),
            "state": state.__dict__,
            "rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        },
        tmp,
    )
    tmp.replace(path)


def export(module: nn.Module, path: Path, metadata: dict[str, str]) -> str:
    """Write the module's weights as safetensors; returns the file's sha256."""
    from detector.models._weights import sha256_file, write_safetensors

    tensors = {k: v.detach().cpu().contiguous().numpy() for k, v in module.state_dict().items()}
    write_safetensors(path, tensors, metadata)
    return sha256_file(path)


def manifest_entry(config: dict[str, Any], file: str, sha256: str, metrics: dict[str, float]) -> str:
    """A ``[models."arch.tag"]`` TOML table for ``weights/manifest.toml`` (every ``input`` key kept)."""
    from detector.tomlwrite import toml_value

    name, arch = config["name"], parse_model_name(config["name"])[0]
    inp = config["input"]
    size = inp["size"] if isinstance(inp["size"], list) else [inp["size"], inp["size"]]
    fields = {
        "task": config["task_kind"],
        "arch": arch,
        "description": config.get("description", ""),
        "file": file,
        "sha256": sha256,
        "licence": config.get("licence", "Apache-2.0"),
        "training_data": config.get("training_data", ""),
        "source": {"kind": "shipped"},
        "input": {**inp, "size": size},
        "metrics": {k: round(v, 4) for k, v in metrics.items()},
    }
    lines = [f'[models."{name}"]'] + [f"{key} = {toml_value(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def build_module(config: dict[str, Any], device: torch.device) -> nn.Module:
    """The config's architecture on ``device``: ImageNet-initialised with ``init: imagenet``, or
    fine-tuned from a registered model's verified weights with ``init: model:<name>`` (same arch)."""
    arch = parse_model_name(config["name"])[0]
    module = get_architecture(arch).factory()
    init = str(config.get("init", ""))
    if init.startswith("model:"):
        from safetensors.torch import load_file

        from detector.models._registry import get_entry
        from detector.models._weights import default_weights_dir, resolve_weights

        start = init.removeprefix("model:")
        if parse_model_name(start)[0] != arch:
            raise SystemExit(f"init: {init} is a different architecture from {config['name']}")
        module.load_state_dict(load_file(str(resolve_weights(get_entry(start), default_weights_dir()))))
    elif init == "imagenet":
        from detector.models.effnet_lite import EfficientNetLite, load_imagenet

        if not isinstance(module, EfficientNetLite):
            raise SystemExit(f"init: imagenet is only available for effnetlite0, not {arch}")
        load_imagenet(module)
    return module.to(device)


def build_optimiser(
    module: nn.Module, tcfg: dict[str, Any]
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.OneCycleLR]:
    """AdamW with a one-cycle schedule over ``epochs * steps_per_epoch`` steps."""
    opt = torch.optim.AdamW(
        module.parameters(), lr=float(tcfg["lr"]), weight_decay=float(tcfg.get("weight_decay", 1e-4))
    )
    epochs, steps = int(tcfg["epochs"]), int(tcfg["steps_per_epoch"])
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=float(tcfg["lr"]), total_steps=epochs * steps, pct_start=0.15
    )
    return opt, sched


def load_checkpoint(
    path: Path,
    module: nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    rng: np.random.Generator,
    device: torch.device,
) -> RunState:
    """Restore what :func:`save_checkpoint` wrote (in place); returns the saved run state."""
    saved = torch.load(path, map_location=device, weights_only=False)
    module.load_state_dict(saved["model"])
    opt.load_state_dict(saved["opt"])
    sched.load_state_dict(saved["sched"])
    rng.bit_generator.state = saved["rng"]
    torch.set_rng_state(saved["torch_rng"])
    return RunState(**saved["state"])


RUN_FILE = "run.json"
"""What a run folder was started for (model name and task), checked by ``--resume`` and ``--finish``."""


def _run_identity(config: dict[str, Any]) -> dict[str, str]:
    return {"name": str(config["name"]), "task": str(config["task"])}


def check_run_dir(config: dict[str, Any], out: Path, *, resume: bool) -> None:
    """Refuse, before any data is built, a run folder that does not fit the command: ``--resume``
    (or ``--finish``) with no checkpoint (it trained from scratch), a new run over an existing one
    (it replaced its checkpoint, weights and manifest entry and appended to its log), or a folder
    started for another model (``--finish`` loaded a face run into the synthetic-image model)."""
    ckpt = out / "last.pt"
    if resume and not ckpt.is_file():
        raise SystemExit(f"error: nothing to resume or finish: {ckpt} is missing")
    if not resume and ckpt.exists():
        raise SystemExit(
            f"error: {out} holds a run already: --resume continues it, --finish exports it; "
            "or give another --out"
        )
    started = out / RUN_FILE
    if resume and started.is_file():  # runs from before 2026-12-03 have none
        recorded = json.loads(started.read_text(encoding="utf-8"))
        if recorded != _run_identity(config):
            raise SystemExit(f"error: {out} was started for {recorded}, not for {_run_identity(config)}")


def run(
    config: dict[str, Any], out: Path, *, resume: bool, device: torch.device, max_steps: int | None = None
) -> TrainResult:
    """Train per ``config`` into ``out``; returns the exported best module, its file and sha256."""
    check_run_dir(config, out, resume=resume)
    seed = int(config.get("seed", 0))
    set_seed(seed)
    module = build_module(config, device)  # before the data: an unknown model or init fails at once
    initialised = torch.get_rng_state()
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_FILE).write_text(json.dumps(_run_identity(config)) + "\n", encoding="utf-8")
    tcfg = config["train"]
    rng = np.random.default_rng(seed)
    spec = input_spec(config)
    set_seed(seed)
    data = build_data(config, spec)
    # building face pools draws from torch's generator, loading cached ones does not: training goes
    # on from the state after the module's initialisation either way
    torch.set_rng_state(initialised)
    opt, sched = build_optimiser(module, tcfg)
    epochs, steps = int(tcfg["epochs"]), int(tcfg["steps_per_epoch"])
    state = RunState()
    ckpt = out / "last.pt"
    if resume and ckpt.exists():
        state = load_checkpoint(ckpt, module, opt, sched, rng, device)
    loss_fn = nn.BCEWithLogitsLoss()
    val = data.validation
    best_file = out / "best.safetensors"
    log = out / "log.jsonl"
    for epoch in range(state.epoch, epochs):
        start, losses = time.time(), []
        n_steps = steps if max_steps is None else min(steps, max_steps)
        if n_steps < steps:  # a smoke run: its manifest entry says so
            state.capped_steps = min(state.capped_steps or n_steps, n_steps)
        for _ in tqdm(range(n_steps), desc=f"epoch {epoch + 1}/{epochs}", leave=False):
            batch = data.train.batch(int(tcfg["batch_size"]), rng)
            x = torch.from_numpy(spec.to_array(batch.images)).to(device)
            losses.append(train_step(module, opt, x, torch.from_numpy(batch.labels).to(device), loss_fn))
            sched.step()
        logits = score(module, data, val.images, device)
        auc = float(roc_auc_score(val.labels, logits)) if len(set(val.labels.tolist())) == 2 else math.nan
        state.epoch = epoch + 1
        record = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)),
            "val_auc": auc,
            "lr": sched.get_last_lr()[0],
            "seconds": round(time.time() - start, 1),
        }
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)
        if not math.isnan(auc) and auc > state.best_auc:
            state.best_auc, state.best_epoch = auc, epoch + 1
            export(module, best_file, {"name": config["name"], "epoch": str(epoch + 1)})
        save_checkpoint(ckpt, module, opt, sched, state, rng)
    if not best_file.exists():
        export(module, best_file, {"name": config["name"], "epoch": str(state.epoch)})
    return finalize(config, out, state)


def finalize(config: dict[str, Any], out: Path, state: RunState | None = None) -> TrainResult:
    """Export the run's best epoch as the shipped file with its manifest entry.

    Also used on its own (``scripts.train --finish``) for a run stopped before its last epoch:
    the state (best epoch, validation AUC) then comes from ``RUN_DIR/last.pt``.
    """
    from safetensors.torch import load_file

    from datasets.tasks import TASK_KINDS

    if config["task"] not in TASK_KINDS:
        raise SystemExit(f"error: unknown task {config['task']!r}; known: {', '.join(TASK_KINDS)}")
    if state is None:
        check_run_dir(config, out, resume=True)
        saved = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
        state = RunState(**saved["state"])
    arch = parse_model_name(config["name"])[0]
    final = out / f"{config['name']}.safetensors"
    best = get_architecture(arch).factory()
    best.load_state_dict(load_file(str(out / "best.safetensors")))
    sha = export(best, final, {"name": config["name"], "epoch": str(state.best_epoch)})
    metrics = {
        "val_auc": state.best_auc,
        "best_epoch": float(state.best_epoch),
        "epochs_run": float(state.epoch),
    }
    if state.capped_steps:  # --max-steps: not the configured run (it looked like one)
        metrics["steps_per_epoch_capped"] = float(state.capped_steps)
    config = {**config, "task_kind": TASK_KINDS[config["task"]]}
    (out / "manifest_entry.toml").write_text(
        manifest_entry(config, final.name, sha, metrics), encoding="utf-8"
    )
    return TrainResult(final, sha, metrics, best.eval())
