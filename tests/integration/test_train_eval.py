"""Training writes checkpoints the registry loads bit-for-bit; evaluation metrics match scikit-learn."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from scripts.eval_metrics import binary_metrics, equal_error_rate
from scripts.evaluate import FrameScore, summarize
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from datasets.images import FaceCache, context_crop
from datasets.readers import Sample
from detector.models._manifest import Manifest
from detector.models._registry import create_model
from scripts import train


def _write_images(folder: Path, n: int, seed: int) -> None:
    """Smooth random colour fields with texture, written as PNG (enough for 64 px patches)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        base = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
        image = np.asarray(Image.fromarray(base).resize((128, 96), Image.BICUBIC))
        noise = rng.integers(-10, 11, image.shape)
        Image.fromarray(np.clip(image + noise, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")


def _face_cache(face_photo: np.ndarray, cache_dir: Path) -> None:
    """A cache of astronaut crops (known box and landmarks), as ``face_sbi`` would have built it."""
    box = (180.0, 60.0, 290.0, 200.0)
    landmarks = np.array([[210, 110], [260, 110], [235, 140], [215, 170], [255, 170]], np.float32)
    crop, cbox, clm = context_crop(face_photo, box, landmarks, 2.0, 128)
    n = 4
    cache = FaceCache(
        np.stack([crop] * n),
        np.stack([cbox] * n),
        np.stack([clm] * n),
        ["toy/train"] * 3 + ["toy/val"],
        ["x"] * n,
        2.0,
    )
    cache.save(cache_dir / "toy_ctx2_128.npz")


def _config(task: str, tmp_path: Path) -> dict[str, Any]:
    common = {"seed": 3, "train": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "lr": 1e-3}}
    if task == "face_sbi":
        data = {
            "cache": str(tmp_path / "cache"),
            "context_size": 128,
            "roots": [{"root": str(tmp_path / "unused"), "name": "toy"}],
            "val_groups": ["toy/val"],
        }
        return {
            "task": task,
            "name": "facecnn.toy",
            "input": {"size": [64, 64], "crop_margin": 1.3},
            "data": data,
        } | common
    data = {"root": str(tmp_path), "train_subsets": ["train"], "val_subsets": ["val"], "autoencoder_steps": 2}
    return {"task": task, "name": "nprcnn.toy", "input": {"size": [64, 64]}, "data": data} | common


@pytest.mark.parametrize("task", ["face_sbi", "synthetic_npr"])
def test_two_step_run_reloads_through_the_registry(
    task: str, tmp_path: Path, face_photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cache").mkdir()
    _face_cache(face_photo, tmp_path / "cache")
    _write_images(tmp_path / "train", 4, 0)
    _write_images(tmp_path / "val", 2, 1)
    config = _config(task, tmp_path)
    out = tmp_path / "run"
    result = train.run(config, out, resume=False, device=torch.device("cpu"))

    assert (out / "last.pt").is_file()
    assert result.file.is_file()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1]
    assert {"loss", "val_auc"} <= set(log[0])

    entry = tomllib.loads("schema_version = 1\n" + (out / "manifest_entry.toml").read_text())
    manifest = Manifest.model_validate(entry)
    monkeypatch.setattr("detector.models.weights.shipped_dir", lambda: out)
    loaded = create_model(config["name"], manifest=manifest)
    probe = [face_photo[100:228, 150:278], face_photo[:96, :160]]
    before = loaded.__class__(config["name"], loaded.entry, result.module, torch.device("cpu")).predict(probe)
    np.testing.assert_allclose(loaded.predict(probe), before, rtol=0, atol=1e-6)


def test_resume_after_interruption_matches_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_images(tmp_path / "train", 4, 0)
    _write_images(tmp_path / "val", 2, 1)
    config = _config("synthetic_npr", tmp_path)
    config["train"]["epochs"] = 2
    straight = train.run(config, tmp_path / "straight", resume=False, device=torch.device("cpu"))

    real_score = train.score
    calls = {"n": 0}

    def crash_in_epoch_two(*args: Any, **kwargs: Any) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_score(*args, **kwargs)

    monkeypatch.setattr(train, "score", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train.run(config, tmp_path / "resumed", resume=False, device=torch.device("cpu"))
    monkeypatch.setattr(train, "score", real_score)
    resumed = train.run(config, tmp_path / "resumed", resume=True, device=torch.device("cpu"))

    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert resumed.sha256 == straight.sha256


LABELS = np.array([0, 0, 1, 1, 0, 1, 1, 0, 1, 0])
LOGITS = np.array([-2.0, 0.5, 1.5, -0.3, -1.0, 3.0, 0.2, 0.1, -0.5, -4.0])


def test_metrics_match_scikit_learn() -> None:
    m = binary_metrics(LABELS, LOGITS)
    probs = 1.0 / (1.0 + np.exp(-LOGITS))
    assert m["auc"] == pytest.approx(roc_auc_score(LABELS, LOGITS))
    assert m["ap"] == pytest.approx(average_precision_score(LABELS, LOGITS))
    assert m["log_loss"] == pytest.approx(log_loss(LABELS, probs))
    assert m["brier"] == pytest.approx(brier_score_loss(LABELS, probs))
    assert m["accuracy"] == pytest.approx(((LOGITS > 0) == LABELS).mean())
    # ECE by hand: 15 equal-width bins of P(fake)
    bins = np.minimum((probs * 15).astype(int), 14)
    ece = sum((bins == b).mean() * abs(LABELS[bins == b].mean() - probs[bins == b].mean()) for b in set(bins))
    assert m["ece"] == pytest.approx(ece)
    assert (m["n"], m["n_fake"]) == (10, 5)


def test_equal_error_rate() -> None:
    assert equal_error_rate(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 0.0
    assert equal_error_rate(np.array([0, 1]), np.array([0.9, 0.1])) == pytest.approx(1.0)
    # one real scores above one fake out of two each: FPR = FNR = 0.5 at the crossing
    assert equal_error_rate(np.array([0, 0, 1, 1]), np.array([0.1, 0.7, 0.6, 0.9])) == pytest.approx(0.5)


def test_summary_aggregates_videos_and_groups() -> None:
    class Stub:
        name = "stub.model"
        entry = type("E", (), {"calibration": None})()

    real = Sample(Path("r.mp4"), 0, "a")
    fake = Sample(Path("f.mp4"), 1, "b")
    scores = [
        FrameScore(real, 0, -1.0),
        FrameScore(real, 1, 2.0),
        FrameScore(fake, 0, 1.0),
        FrameScore(fake, 1, 3.0),
    ]
    result = summarize(Stub(), scores, None)  # type: ignore[arg-type]
    assert result["levels"]["frame"]["n"] == 4
    assert result["levels"]["video"]["n"] == 2
    assert result["levels"]["video"]["auc"] == 1.0  # means 0.5 vs 2.0
    assert result["levels"]["frame"]["auc"] == pytest.approx(roc_auc_score([0, 0, 1, 1], [-1, 2, 1, 3]))
    assert set(result["groups"]) == {"a", "b"}
    assert result["threshold"].startswith("logit 0")


def test_efficientnet_b0_is_registered_with_one_logit() -> None:
    from detector.models._registry import get_architecture, list_architectures

    module = get_architecture("effnet_b0").factory().eval()
    with torch.no_grad():
        assert module(torch.zeros(2, 3, 64, 64)).shape == (2, 1)
    assert "effnet_b4" in list_architectures()
