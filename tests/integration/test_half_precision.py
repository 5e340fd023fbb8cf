"""Half precision: which dtype each model runs in, and that a model validated in float16 keeps its
probabilities within 1e-2 of float32 on real media (run here on the CPU's float16; CUDA's is the
same IEEE format, with float32 accumulation in both)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from detector.errors import InvalidRequest
from detector.faces.extract import FaceExtractor, crop_face
from detector.models import create_model
from detector.models._manifest import load_manifest
from detector.runtime import model_dtype
from detector.settings import FaceSettings

TOLERANCE = 1e-2
"""Largest change of a validated model's probability (sigmoid of its logit) in float16."""

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


@pytest.mark.parametrize(
    ("precision", "device", "validated", "expected"),
    [
        ("auto", CUDA, True, torch.float16),
        ("auto", CUDA, False, torch.float32),
        ("auto", CPU, True, torch.float32),
        ("fp32", CUDA, True, torch.float32),
        ("fp32", CPU, False, torch.float32),
    ],
)
def test_auto_takes_half_precision_only_on_cuda_for_validated_models(
    precision: str, device: torch.device, validated: bool, expected: torch.dtype
) -> None:
    assert model_dtype(precision, device, validated) == expected


def test_an_unknown_precision_is_a_typed_error() -> None:
    with pytest.raises(InvalidRequest, match="precision"):
        model_dtype("fp8", CUDA, True)


def test_a_half_precision_classifier_runs_in_float16_and_returns_float32_logits() -> None:
    model = create_model("effnetlite0v.synthetic3", dtype=torch.float16)
    assert model.dtype == torch.float16
    assert {p.dtype for p in model.module.parameters()} == {torch.float16}
    assert model.preprocess([np.zeros((160, 160, 3), np.uint8)]).dtype == torch.float16
    logits = model.predict([np.full((200, 240, 3), 128, np.uint8)])
    assert logits.dtype == np.float32
    assert np.isfinite(logits).all()
    # heat maps take gradients through the trained module, which stays in float32
    assert {p.dtype for p in model.explainer().module.parameters()} == {torch.float32}


def test_the_shipped_models_run_in_float32_on_the_cpu() -> None:
    for name in ("effnetlite0.faces4", "effnetlite0v.synthetic3"):
        assert create_model(name).dtype == torch.float32


def _probability(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))


def _rgb(path: Path, longest: int = 1280) -> np.ndarray:
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        image.thumbnail((longest, longest))
        return np.asarray(image)


def _face_crops(shared_data: Path, margin: float, size: int, photos: int = 40) -> list[np.ndarray]:
    """Crops of the faces MTCNN finds in the first ``photos`` photos of ``faces/VERIFY.tsv``."""
    root = shared_data / "faces"
    with (root / "VERIFY.tsv").open(newline="") as handle:
        paths = [r["path"] for r in csv.DictReader(handle, delimiter="\t") if int(r["haar_faces"]) >= 1]
    extractor = FaceExtractor(FaceSettings())
    crops = []
    for path in paths[:photos]:
        image = _rgb(root / path)
        crops += [crop_face(image, d.box, margin, size) for d in extractor.detect([image])[0]]
    return crops


def _images(shared_data: Path, count: int = 16) -> list[np.ndarray]:
    """An evenly spaced sample of the real and generated images of ``synthetic/``."""
    suffixes = {".png", ".jpg", ".jpeg", ".webp"}
    paths = sorted(p for p in (shared_data / "synthetic").rglob("*") if p.suffix.lower() in suffixes)
    return [_rgb(p) for p in paths[:: max(1, len(paths) // count)][:count]]


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, e in load_manifest().models.items() if e.half_precision))
def test_a_model_validated_in_half_precision_keeps_its_probabilities(
    name: str, shared_data: Path, mesonet_weights_dir: Path
) -> None:
    entry = load_manifest().models[name]
    weights = mesonet_weights_dir if entry.source.kind == "import" else None
    full = create_model(name, weights_dir=weights, dtype=torch.float32)
    half = create_model(name, weights_dir=weights, dtype=torch.float16)
    if entry.task == "face_forgery":
        inputs = _face_crops(shared_data, full.spec.crop_margin, full.spec.size[0])
    else:
        inputs = _images(shared_data)
    assert len(inputs) >= 12
    gap = np.abs(_probability(full.predict(inputs)) - _probability(half.predict(inputs)))
    assert float(gap.max()) <= TOLERANCE, f"{name}: float16 moved a probability by {float(gap.max()):.4f}"
    assert float(gap.max()) > 0, "the half-precision model must really run in float16"


@pytest.mark.shared_data
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_auto_runs_the_validated_synthetic_model_in_half_precision(shared_data: Path) -> None:
    on_cuda = create_model("effnetlite0v.synthetic3", device="cuda")
    assert on_cuda.dtype == torch.float16
    assert create_model("effnetlite0.faces4", device="cuda").dtype == torch.float32
    inputs = _images(shared_data)
    gap = np.abs(
        _probability(create_model("effnetlite0v.synthetic3").predict(inputs))
        - _probability(on_cuda.predict(inputs))
    )
    assert float(gap.max()) <= TOLERANCE


@pytest.mark.shared_data
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_float32_face_model_matches_the_cpu(shared_data: Path) -> None:
    """TF32 convolutions moved this model by 0.012 on an H200; IEEE float32 (select_device) must not."""
    on_cpu, on_cuda = create_model("effnetlite0.faces4"), create_model("effnetlite0.faces4", device="cuda")
    assert on_cuda.dtype == torch.float32
    crops = _face_crops(shared_data, on_cpu.spec.crop_margin, on_cpu.spec.size[0])
    gap = np.abs(_probability(on_cpu.predict(crops)) - _probability(on_cuda.predict(crops)))
    assert float(gap.max()) <= 1e-3
