"""Every training recipe in ``scripts/configs`` loads, names a registered start, and matches its
shipped model's input (a recipe and the weights it produced must not drift apart)."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasets.tasks import entry_for
from datasets.trainer import load_config
from detector.models._manifest import load_manifest
from detector.models._registry import parse_model_name

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "scripts" / "configs").glob("*.yaml"))


def test_there_are_recipes() -> None:
    assert len(CONFIGS) >= 5


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_recipe_is_consistent(path: Path) -> None:
    config = load_config(path)
    entry = entry_for(config)  # task, arch and input validate
    models = load_manifest().models
    init = str(config.get("init", ""))
    if init.startswith("model:"):
        start = init.removeprefix("model:")
        assert start in models, f"{path.name} starts from {start}, which is not registered"
        assert parse_model_name(start)[0] == entry.arch
    shares = config["data"].get("real_shares", {})
    assert set(shares) <= set(config["data"].get("real", [])), "real_shares names a source not in data.real"
    shipped = models.get(config["name"])
    if shipped is not None:
        assert shipped.input == entry.input, f"{path.name} and the shipped {config['name']} differ in input"
        assert shipped.arch == entry.arch
