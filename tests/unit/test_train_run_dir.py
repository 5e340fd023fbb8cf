"""``scripts.train``'s checks on its run folder and arguments, before any data is built (no
training). Regressions of a walkthrough: ``--resume`` without a checkpoint trained from scratch, a
new run over an old one replaced its weights and appended to its log, ``--finish`` loaded a face
run into the synthetic-image model, and bad arguments ended in tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datasets.trainer import RUN_FILE, check_run_dir, finalize
from scripts.train import main

FACE = {"name": "effnetlite0.faces4", "task": "face_v2"}


def test_resume_or_finish_needs_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"nothing to resume or finish: .*last\.pt is missing"):
        check_run_dir(FACE, tmp_path, resume=True)
    with pytest.raises(SystemExit, match="nothing to resume or finish"):
        finalize(FACE, tmp_path)


def test_a_new_run_over_an_existing_one_is_refused(tmp_path: Path) -> None:
    (tmp_path / "last.pt").write_bytes(b"checkpoint")
    with pytest.raises(SystemExit, match="holds a run already: --resume continues it"):
        check_run_dir(FACE, tmp_path, resume=False)
    check_run_dir(FACE, tmp_path, resume=True)


def test_a_run_started_for_another_model_is_not_resumed_or_finished(tmp_path: Path) -> None:
    (tmp_path / "last.pt").write_bytes(b"checkpoint")
    (tmp_path / RUN_FILE).write_text(json.dumps(FACE))
    synthetic = {"name": "effnetlite0v.synthetic3", "task": "synthetic_v2"}
    with pytest.raises(SystemExit, match=r"was started for .*effnetlite0\.faces4"):
        check_run_dir(synthetic, tmp_path, resume=True)
    with pytest.raises(SystemExit, match="was started for"):
        finalize(synthetic, tmp_path)


def _config(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(
        f"task: face_v2\nname: {name}\ninput: {{size: 128}}\ndata: {{}}\ntrain: {{epochs: 1}}\n",
        encoding="utf-8",
    )
    return path


def test_bad_arguments_are_one_line_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    config = _config(tmp_path, "nosuch.model")
    assert main(["--config", str(config), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: unknown_model: ")
    assert not out.exists(), "a refused run leaves no folder behind"
    with pytest.raises(SystemExit, match="no config file"):
        main(["--config", str(tmp_path / "missing.yaml"), "--out", str(out)])
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(SystemExit, match="is not a YAML mapping"):
        main(["--config", str(tmp_path / "empty.yaml"), "--out", str(out)])
    for steps in ("0", "-1"):
        with pytest.raises(SystemExit):
            main(["--config", str(config), "--out", str(out), "--max-steps", steps])
        assert "--max-steps" in capsys.readouterr().err


def test_an_unknown_or_unstaged_training_source_is_one_line(tmp_path: Path) -> None:
    from datasets.tasks import staged_sources

    staged, pools = tmp_path / "staged", tmp_path / "pools"
    with pytest.raises(SystemExit, match=r"unknown training source\(s\) \['mead_rael'\]; known: "):
        staged_sources(["mead_rael"], staged, pools)
    with pytest.raises(SystemExit, match=r"mead_real not staged under .*--only mead_real"):
        staged_sources(["mead_real"], staged, pools)
    (staged / "mead_real").mkdir(parents=True)
    assert staged_sources(["mead_real"], staged, pools) == {"mead_real": "real_face_video"}


def test_finish_with_an_unknown_task_and_pools_with_nothing_staged_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datasets.face_pool import main as pools

    with pytest.raises(SystemExit, match="unknown task 'face_v9'; known: "):
        finalize({"name": "effnetlite0.x", "task": "face_v9"}, tmp_path)
    assert pools(["--staged", str(tmp_path / "nothing"), "--out", str(tmp_path / "pools")]) == 2
    assert "error: no face source is staged under" in capsys.readouterr().err


def test_a_run_capped_by_max_steps_says_so_in_its_manifest_entry(tmp_path: Path) -> None:
    """A smoke run's weights and manifest entry looked like the configured run's."""
    import tomllib

    from datasets.trainer import RunState, export
    from detector.models._registry import get_architecture

    config = {"name": "meso4.smoke", "task": "face_v2", "input": {"size": 256}}
    export(get_architecture("meso4").factory(), tmp_path / "best.safetensors", {"name": "meso4.smoke"})
    for capped, expected in ((0, None), (3, 3.0)):
        state = RunState(epoch=2, best_auc=0.6, best_epoch=1, capped_steps=capped)
        finalize(config, tmp_path, state)
        entry = tomllib.loads((tmp_path / "manifest_entry.toml").read_text())["models"]["meso4.smoke"]
        assert entry["metrics"].get("steps_per_epoch_capped") == expected


def test_training_starts_from_one_random_state_whether_pools_were_built_or_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building face pools draws from torch's generator and loading cached ones does not: two runs
    of one seed gave different weights. The model is built once, before the data."""
    import torch

    from datasets import trainer

    class Started(Exception):
        pass

    states: list[tuple[torch.Tensor, torch.Tensor]] = []

    def optimiser(module: torch.nn.Module, tcfg: object) -> None:
        first = next(module.parameters()).detach().clone()
        states.append((first, torch.get_rng_state()))
        raise Started

    monkeypatch.setattr(trainer, "build_optimiser", optimiser)
    monkeypatch.setattr(trainer, "input_spec", lambda config: None)
    config = {"name": "meso4.smoke", "task": "face_v2", "train": {}, "seed": 3}
    for draws in (0, 5):  # cached pools draw nothing; building them draws
        monkeypatch.setattr(trainer, "build_data", lambda config, spec, n=draws: torch.rand(n))
        with pytest.raises(Started):
            trainer.run(config, tmp_path / f"run{draws}", resume=False, device=torch.device("cpu"))
    (weights, cached), (same, built) = states
    assert torch.equal(weights, same)
    assert torch.equal(cached, built)


def test_a_source_already_pooled_need_not_be_staged(tmp_path: Path) -> None:
    from datasets.tasks import staged_sources

    staged, pools = tmp_path / "staged", tmp_path / "pools"
    pools.mkdir()
    (pools / "mead_real_224.npz").write_bytes(b"")
    assert staged_sources(["mead_real"], staged, pools) == {"mead_real": "real_face_video"}
    with pytest.raises(SystemExit, match="utkface not staged"):
        staged_sources(["utkface"], staged, pools)
