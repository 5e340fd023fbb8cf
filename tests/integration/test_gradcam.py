"""Grad-CAM heatmaps: the crop's shape, highest where a blended patch was pasted, PNGs in reports."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from detector.errors import ModelError
from detector.models._gradcam import grad_cam, heatmap_png, last_conv
from detector.models._manifest import InputConfig, ModelEntry, Source
from detector.models.base import TorchClassifier


class EdgeEnergyNet(nn.Module):
    """A small real CNN whose fake-logit grows with local high-frequency energy (blending seams).

    conv1 holds fixed Laplacian filters (+ and -, so ReLU keeps |response|), conv2 pools that
    energy locally, then global average pooling and a linear head.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 2, 3, padding=1, bias=False, padding_mode="replicate")
        self.conv2 = nn.Conv2d(2, 4, 5, padding=2)
        self.head = nn.Linear(4, 1)
        lap = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]) / 3.0
        with torch.no_grad():
            self.conv1.weight.copy_(torch.stack([lap.expand(3, 3, 3), -lap.expand(3, 3, 3)]))
            self.conv2.weight.fill_(1.0 / 50.0)
            self.conv2.bias.fill_(0.0)
            self.head.weight.fill_(1.0)
            self.head.bias.fill_(-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        out: torch.Tensor = self.head(energy.mean(dim=(2, 3)))
        return out


def classifier(module: nn.Module, size: tuple[int, int]) -> TorchClassifier:
    entry = ModelEntry(
        task="face_forgery",
        arch="edgenet",
        input=InputConfig(size=size, crop_margin=1.3),
        file="edgenet.test.safetensors",
        sha256="0" * 64,
        source=Source(kind="shipped"),
        licence="test",
        training_data="none",
    )
    return TorchClassifier("edgenet.test", entry, module, torch.device("cpu"))


def blended_patch_crop(shape: tuple[int, int], box: tuple[int, int, int, int], seed: int) -> np.ndarray:
    """A smooth face-like crop with a noisy patch pasted through a soft (blurred) mask at ``box``."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([120 + 60 * np.sin(xx / 37.0), 100 + 40 * np.cos(yy / 41.0), 90 + 0 * xx], axis=-1)
    patch = base + rng.normal(0, 25, base.shape).astype(np.float32)
    mask = np.zeros((h, w), np.float32)
    y0, x0, y1, x1 = box
    mask[y0:y1, x0:x1] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), 2.0)[..., None]
    return np.clip(base * (1 - mask) + patch * mask, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("shape", "box"),
    [((128, 128), (20, 70, 60, 110)), ((96, 160), (50, 10, 86, 50)), ((200, 150), (120, 60, 170, 120))],
)
def test_heatmap_has_the_crop_shape_and_peaks_on_the_blended_patch(
    shape: tuple[int, int], box: tuple[int, int, int, int]
) -> None:
    model = classifier(EdgeEnergyNet(), (96, 96))
    crop = blended_patch_crop(shape, box, seed=sum(shape))
    (cam,) = grad_cam(model, [crop])
    assert cam.shape == shape
    assert cam.dtype == np.float32
    assert cam.min() >= 0.0
    assert cam.max() == pytest.approx(1.0)
    y0, x0, y1, x1 = box
    inside = np.zeros(shape, bool)
    inside[y0:y1, x0:x1] = True
    peak = np.unravel_index(int(np.argmax(cam)), shape)
    assert inside[peak], f"peak {peak} outside the patch {box}"
    assert cam[inside].mean() > 3 * cam[~inside].mean()


def test_gradcam_weights_are_gradients_of_the_fake_logit() -> None:
    # raw_logit_positive = "real" negates the logit: evidence for "fake" becomes evidence against
    module = EdgeEnergyNet()
    model = classifier(module, (64, 64))
    crop = blended_patch_crop((64, 64), (10, 10, 40, 40), seed=1)
    (cam,) = grad_cam(model, [crop])
    flipped = model.entry.model_copy(update={"raw_logit_positive": "real"})
    negated = TorchClassifier("edgenet.test", flipped, module, torch.device("cpu"))
    (none,) = grad_cam(negated, [crop])
    assert cam.max() == pytest.approx(1.0)
    assert float(none.max()) == 0.0


def test_heatmaps_per_image_in_a_batch_and_png_encoding() -> None:
    model = classifier(EdgeEnergyNet(), (64, 64))
    crops = [
        blended_patch_crop((80, 80), (5, 5, 30, 30), 2),
        blended_patch_crop((80, 80), (45, 45, 75, 75), 3),
    ]
    cams = grad_cam(model, crops)
    assert np.argmax(cams[0]) != np.argmax(cams[1])
    png = heatmap_png(cams[1])
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (80, 80)
    assert decoded.dtype == np.uint8
    assert decoded.max() == 255


def test_model_without_convolution_is_a_typed_error() -> None:
    with pytest.raises(ModelError):
        last_conv(nn.Sequential(nn.Flatten(), nn.Linear(3, 1)))


def test_pipeline_heatmaps_on_request(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from detector.models._importing import import_weights
    from detector.pipeline import Pipeline
    from detector.settings import ModelSettings, Settings
    from tests.support import mediagen

    weights = tmp_path_factory.mktemp("weights")
    import_weights("mesonet", shared_data / "weights" / "mesonet", weights, names=["meso4.df"])
    pipeline = Pipeline(Settings(models=ModelSettings(face_model="meso4.df", weights_dir=weights)))
    path = mediagen.write_image(tmp_path_factory.mktemp("img") / "face.jpg", mediagen.face_photo(), "jpeg")
    plain = pipeline.analyze(path)
    assert plain.heatmaps == []
    assert plain.tracks
    report = pipeline.analyze(path, heatmaps=True)
    assert len(report.heatmaps) == len(report.tracks) == 1
    heat = report.heatmaps[0]
    size = pipeline.face_model.spec.size
    assert (heat.height, heat.width) == size
    pixels = cv2.imdecode(np.frombuffer(base64.b64decode(heat.png_base64), np.uint8), cv2.IMREAD_UNCHANGED)
    assert pixels.shape == size
    assert report.score.verdict != "out_of_scope"
    face = next(s for s in report.score.signals if s.name == "face_model")
    assert face.present
    assert face.contribution is not None


def test_heat_maps_of_a_folded_model_read_its_trained_module(face_photo: np.ndarray) -> None:
    """The default face model runs with its batch norms folded; its heat maps are Grad-CAM of the
    trained module (batch norms in place), exactly, as before the fold ran: folded, the last
    convolution would output its batch norm's result and the maps would move."""
    from detector.models._registry import create_model
    from detector.settings import Settings
    from tests.support.models import trained_module

    name = Settings().models.face_model
    model = create_model(name)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.module.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.explainer().module.modules())
    reference = TorchClassifier(name, model.entry, trained_module(name), torch.device("cpu"))
    crops = [face_photo[40:300, 120:330], face_photo[128:384, 200:456]]
    for ours, expected in zip(grad_cam(model, crops), grad_cam(reference, crops), strict=True):
        np.testing.assert_allclose(ours, expected, atol=1e-5)
