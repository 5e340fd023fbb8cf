"""MTCNN's three networks (Zhang et al. 2016) with facenet-pytorch's trained weights, built here.

facenet-pytorch ships the weights as state dicts in its package data (``pnet.pt``, ``rnet.pt``,
``onet.pt``), but importing any of its modules imports torchvision, whose ``torchvision.ops``
imports ``torch._dynamo``: 0.8 s of CPU in every process that detects faces, 2-2.4 s in each
scan actor that starts beside another (README, Performance). The networks are small and fixed,
so they are defined here with the layer names of those state dicts, and the files are read from
the installed package without importing it. :func:`detector.faces.mtcnn_pass.detect_batch` runs
the detection algorithm over them; tests check every output against facenet's own networks.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

THRESHOLDS = (0.6, 0.7, 0.7)
"""P-Net, R-Net and O-Net face-probability thresholds: facenet's ``MTCNN`` defaults (tested)."""

FACTOR = 0.709
"""Scale step of the image pyramid: facenet's ``MTCNN`` default (tested)."""

WEIGHTS_SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
"""The files of the pinned facenet-pytorch 2.6.0 wheel: another version's weights would change
every face found without a word, so they are refused like any unverified weights file."""


class _Net(nn.Module):
    """Convolutions with PReLU (and max pooling) shared by the three networks."""

    def _trunk(self, x: torch.Tensor, layers: int) -> torch.Tensor:
        for i in range(1, layers + 1):
            x = getattr(self, f"prelu{i}")(getattr(self, f"conv{i}")(x))
            pool = getattr(self, f"pool{i}", None)
            if pool is not None:
                x = pool(x)
        return x


class PNet(_Net):
    """Proposal network, fully convolutional: (regression (N, 4, h, w), probabilities (N, 2, h, w))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._trunk(x, 3)
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


def _flatten(x: torch.Tensor) -> torch.Tensor:
    """The trained dense layers read features in (N, W, H, C) order (the original Caffe model's)."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class RNet(_Net):
    """Refinement network on 24 px crops: (regression (N, 4), probabilities (N, 2))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu4(self.dense4(_flatten(self._trunk(x, 3))))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(_Net):
    """Output network on 48 px crops: (regression (N, 4), landmarks (N, 10), probabilities (N, 2))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.prelu5(self.dense5(_flatten(self._trunk(x, 4))))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


@dataclass(frozen=True)
class Mtcnn:
    """The three networks in eval mode on ``device``, with the thresholds and pyramid factor."""

    pnet: PNet
    rnet: RNet
    onet: ONet
    device: torch.device
    thresholds: tuple[float, float, float] = THRESHOLDS
    factor: float = FACTOR


def facenet_weights_dir() -> Path:
    """facenet-pytorch's package data folder, found without importing the package
    (:class:`WeightsMissing` when it is not installed)."""
    from detector.errors import WeightsMissing

    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsMissing("facenet-pytorch is not installed: MTCNN's weights come from its wheel")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_mtcnn(device: torch.device, weights_dir: Path | None = None) -> Mtcnn:
    """The networks with facenet-pytorch's weights, each file checked against
    :data:`WEIGHTS_SHA256` (typed errors when one is missing or different) and loaded strictly."""
    from detector.errors import WeightsChecksumMismatch, WeightsMissing
    from detector.models._weights import sha256_file

    folder = weights_dir or facenet_weights_dir()
    pnet, rnet, onet = PNet(), RNet(), ONet()
    for name, net in (("pnet", pnet), ("rnet", rnet), ("onet", onet)):
        path = folder / f"{name}.pt"
        if not path.is_file():
            raise WeightsMissing(
                f"MTCNN weights {path} are missing (facenet-pytorch 2.6.0 ships them)", path=str(path)
            )
        found = sha256_file(path)
        if found != WEIGHTS_SHA256[name]:
            raise WeightsChecksumMismatch(
                f"MTCNN weights {path}: sha256 {found}, expected {WEIGHTS_SHA256[name]} "
                "(facenet-pytorch 2.6.0's file; `make install` installs it)",
                path=str(path),
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
        net.to(device).eval()
    return Mtcnn(pnet, rnet, onet, device)
