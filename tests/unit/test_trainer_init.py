"""``init: model:<name>`` in a training config starts from that registered model's verified weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from datasets.trainer import build_module
from detector.models._registry import get_entry
from detector.models._weights import default_weights_dir, resolve_weights


def test_init_from_a_registered_model_loads_its_weights() -> None:
    config = {"name": "effnetlite0v.synthetic3", "init": "model:effnetlite0v.synthetic"}
    module = build_module(config, torch.device("cpu"))
    shipped = load_file(str(resolve_weights(get_entry("effnetlite0v.synthetic"), default_weights_dir())))
    state = module.state_dict()
    assert state.keys() == shipped.keys()
    assert all(torch.equal(state[k], shipped[k]) for k in shipped)


def test_init_from_another_architecture_is_refused() -> None:
    with pytest.raises(SystemExit, match="different architecture"):
        build_module({"name": "effnetlite0v.x", "init": "model:facecnn.sbi"}, torch.device("cpu"))
