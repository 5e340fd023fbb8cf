"""The synthetic-image model's views (whole image + native crops) share forward passes across
images: the same logits as scoring each image's views alone, in passes of at most ``chunk`` views
(until 2026-12-04 every image was a pass of its own views, so a GPU never saw more than 5 at once)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from detector.models._registry import create_model
from detector.models.effnet_lite import LiteClassifier, ViewsClassifier, image_views

SYNTHETIC_MODEL = "effnetlite0v.synthetic3"


@pytest.fixture(scope="module")
def model() -> ViewsClassifier:
    found = create_model(SYNTHETIC_MODEL, device="cpu")
    assert isinstance(found, ViewsClassifier)
    return found


def _alone(model: ViewsClassifier, image: np.ndarray) -> float:
    """The old way: one image's views in a pass of their own, then their mean."""
    views = image_views(image, model.spec.size[0], model.native_views)
    return float(np.mean(LiteClassifier.predict(model, views)))


def test_views_of_several_images_share_passes_and_keep_each_images_logit(
    model: ViewsClassifier, face_photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 5 views (512 px), 1 view (a 120 px side is below the 160 px input), 5 views (300x420)
    images = [face_photo, face_photo[:120, :200], np.ascontiguousarray(face_photo[100:400, 40:460])]
    expected = [_alone(model, image) for image in images]
    passes: list[int] = []
    forward = model.forward

    def counted(batch: torch.Tensor) -> Any:
        passes.append(batch.shape[0])
        return forward(batch)

    monkeypatch.setattr(model, "cpu_batch", 4)
    monkeypatch.setattr(model, "forward", counted)
    got = model.predict(images)
    assert got.dtype == np.float32
    assert got.shape == (3,)
    assert got.tolist() == pytest.approx(expected, abs=1e-5)
    assert passes == [4, 4, 3]  # 11 views across image boundaries, never more than chunk at once
    assert model.predict([]).shape == (0,)
