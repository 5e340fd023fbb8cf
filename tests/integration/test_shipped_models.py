"""The shipped models: verified files, pinned preprocessing (golden logits), `evaluate` end to end."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from detector.faces.extract import crop_face
from detector.models._manifest import load_manifest
from detector.models._registry import create_model, list_models
from detector.models._weights import sha256_file, shipped_dir
from detector.models.base import Classifier
from detector.settings import Settings
from serving.cli import main as trueframe

FACE_MODEL = "effnetlite0.faces4"
PREVIOUS_FACE = "effnetlite0.faces"  # still shipped: the start of FACE_MODEL's fine-tune
SYNTHETIC_MODEL = "effnetlite0v.synthetic3"
PREVIOUS_SYNTHETIC = "effnetlite0v.synthetic"  # still shipped: the start of SYNTHETIC_MODEL's fine-tune
# the astronaut's face box (x1, y1, x2, y2) in scikit-image's 512x512 photo, as MTCNN finds it
ASTRONAUT_BOX = (180.0, 61.0, 268.0, 172.0)
# recorded from the shipped weights; any change to crop margin, size, interpolation, normalisation,
# patch tiling or weights moves them
GOLDEN = {
    FACE_MODEL: 1.274777,
    PREVIOUS_FACE: 5.266721,
    SYNTHETIC_MODEL: -2.358573,
    PREVIOUS_SYNTHETIC: -1.817848,
}
MAX_BYTES = 25 * 1024 * 1024
SHIPPED = sorted(n for n, e in load_manifest().models.items() if e.source.kind == "shipped")


def test_the_defaults_are_the_golden_models() -> None:
    models = Settings().models
    assert (models.face_model, models.synthetic_model) == (FACE_MODEL, SYNTHETIC_MODEL)


@pytest.fixture(scope="module")
def models() -> dict[str, Classifier]:
    return {name: create_model(name, device="cpu") for name in GOLDEN}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_is_listed_verified_and_small(name: str) -> None:
    entry = load_manifest().models[name]
    path = shipped_dir() / entry.file
    assert name in list_models()
    assert entry.source.kind == "shipped"
    assert path.stat().st_size < MAX_BYTES
    assert sha256_file(path) == entry.sha256
    assert entry.metrics, "a shipped model must publish measured metrics"


@pytest.mark.parametrize("name", [FACE_MODEL, PREVIOUS_FACE])
def test_face_model_golden_logit(models: dict[str, Classifier], face_photo: np.ndarray, name: str) -> None:
    clf = models[name]
    assert clf.spec.crop_margin is not None
    crop = crop_face(face_photo, ASTRONAUT_BOX, clf.spec.crop_margin, clf.spec.size[0])
    assert clf.predict([crop])[0] == pytest.approx(GOLDEN[name], abs=1e-4)
    # a larger crop of the same square is resized by the classifier to the same input
    big = crop_face(face_photo, ASTRONAUT_BOX, clf.spec.crop_margin, clf.spec.size[0] * 2)
    assert abs(clf.predict([big])[0] - GOLDEN[name]) < 0.5


@pytest.mark.parametrize("name", [SYNTHETIC_MODEL, PREVIOUS_SYNTHETIC])
def test_synthetic_model_golden_logit(
    models: dict[str, Classifier], face_photo: np.ndarray, name: str
) -> None:
    clf = models[name]
    logits = clf.predict([face_photo, face_photo[:100, :90]])
    assert logits[0] == pytest.approx(GOLDEN[name], abs=1e-4)
    assert np.isfinite(logits[1])  # smaller than one view: still one score


@pytest.mark.parametrize("flag", [cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4])
def test_plain_upscaling_of_a_real_photo_is_not_read_as_generated(
    models: dict[str, Classifier], face_photo: np.ndarray, flag: int
) -> None:
    """A real photo enlarged 2x by ordinary software stays on the real side (the previous model put
    the bilinear copy of this photo at +1.35 and the bicubic one at +0.06)."""
    big = cv2.resize(face_photo, (1024, 1024), interpolation=flag)
    assert models[SYNTHETIC_MODEL].predict([big])[0] < 0


def test_evaluate_writes_tables_and_plots(tmp_path: Path, face_photo: np.ndarray) -> None:
    """`evaluate` on a tiny real/fake folder: the synthetic model, per-group table, JSON and PNGs."""
    from datasets.artefacts import simulate_upsampling

    rng = np.random.default_rng(0)
    for i, (y, x) in enumerate([(0, 0), (200, 100), (300, 300)]):
        tile = np.ascontiguousarray(face_photo[y : y + 160, x : x + 200])
        (tmp_path / "data/real/cam").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data/fake/gen").mkdir(parents=True, exist_ok=True)
        Image.fromarray(tile).save(tmp_path / f"data/real/cam/{i}.png")
        Image.fromarray(simulate_upsampling(tile, "nearest", rng)).save(tmp_path / f"data/fake/gen/{i}.png")
    out = tmp_path / "out"
    args = ["evaluate", "--model", SYNTHETIC_MODEL, "--data", str(tmp_path / "data"), "--out", str(out)]
    assert trueframe(args) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["levels"]["frame"]["n"] == 6
    assert set(result["groups"]) == {"cam", "gen"}
    assert load_manifest().models[SYNTHETIC_MODEL].calibration is not None, "the shipped model is calibrated"
    assert result["calibrated"] is True
    assert result["threshold"] == "calibrated P = 0.5"
    for png in ("roc.png", "reliability_frame.png", "reliability_video.png"):
        assert (out / png).stat().st_size > 1000
    assert len((out / "scores.csv").read_text().splitlines()) == 7


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_shipped_models_run_channels_last_with_the_same_logits(
    models: dict[str, Classifier], face_photo: np.ndarray, name: str
) -> None:
    """The faster memory layout (see ``LiteClassifier``) changes no logit beyond float rounding."""
    import torch

    clf = models[name]
    crops = [face_photo[:256, :256], face_photo[128:384, 200:456]]
    batch = clf.preprocess(crops)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        fast = clf.forward(batch)
        plain_module = copy.deepcopy(clf.module).to(memory_format=torch.contiguous_format)
        plain = plain_module(batch.contiguous()).reshape(-1)
    if clf.entry.raw_logit_positive == "real":
        plain = -plain
    np.testing.assert_allclose(fast.numpy(), plain.numpy(), atol=1e-5)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_loaded_models_run_with_batch_norms_folded_and_the_same_logits(
    models: dict[str, Classifier], face_photo: np.ndarray, name: str
) -> None:
    """``create_model`` hands the classifier an eval-mode module, so ``LiteClassifier`` runs its
    folded copy (a fresh module is in train mode: the fold was skipped until 2026-12-02); the
    trained module, batch norms included, gives the same logits."""
    import torch

    from tests.support.models import trained_module

    clf = models[name]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in clf.module.modules())
    crops = [face_photo[:256, :256], face_photo[128:384, 200:456]]
    batch = clf.preprocess(crops)
    with torch.inference_mode():
        plain = trained_module(name)(batch.contiguous()).reshape(-1)
        fast = clf.forward(batch)
    if clf.entry.raw_logit_positive == "real":
        plain = -plain
    np.testing.assert_allclose(fast.numpy(), plain.numpy(), atol=1e-4)
