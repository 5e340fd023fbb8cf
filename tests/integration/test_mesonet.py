"""MesoNet: the PyTorch port equals the authors' Keras forward pass, re-implemented in NumPy.

The reference below reads the authors' HDF5 files with h5py only and follows their
``classifiers.py`` layer by layer (float64, channels-last, "same" padding, BN epsilon 1e-3); it
shares no code with ``detector.models``. Keras names layers ``<kind>_<n>`` in creation order.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch

from detector.models import create_model, list_models
from detector.models._importing import import_weights
from detector.models._manifest import load_manifest

H5 = {
    "meso4.df": "Meso4_DF.h5",
    "meso4.f2f": "Meso4_F2F.h5",
    "mesoinception4.df": "MesoInception_DF.h5",
    "mesoinception4.f2f": "MesoInception_F2F.h5",
}

# --- a NumPy Keras ------------------------------------------------------------------------------

Layers = dict[str, list[dict[str, np.ndarray]]]


def read_h5(path: Path) -> Layers:
    """Per layer kind, the layers' weights in Keras creation order."""
    by_kind: dict[str, list[tuple[int, dict[str, np.ndarray]]]] = {}
    with h5py.File(path, "r") as fh:
        for name in fh.attrs["layer_names"]:
            name = name.decode()
            group = fh[name]
            weights = {
                w.decode().split("/")[-1].split(":")[0]: np.asarray(group[w.decode()], dtype=np.float64)
                for w in group.attrs["weight_names"]
            }
            if weights:
                match = re.fullmatch(r"(.+)_(\d+)", name)
                assert match, name
                by_kind.setdefault(match.group(1), []).append((int(match.group(2)), weights))
    return {kind: [w for _, w in sorted(items, key=lambda t: t[0])] for kind, items in by_kind.items()}


def conv_same(x: np.ndarray, w: dict[str, np.ndarray], dilation: int = 1) -> np.ndarray:
    """Keras Conv2D(padding='same', activation='relu'): im2col windows, then an einsum."""
    kernel = w["kernel"]  # (kh, kw, in, out)
    k = kernel.shape[0]
    pad = dilation * (k - 1) // 2
    xp = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    span = dilation * (k - 1) + 1
    cols = np.lib.stride_tricks.sliding_window_view(xp, (span, span), axis=(0, 1))[
        ..., ::dilation, ::dilation
    ]
    out = np.einsum("hwcij,ijco->hwo", cols, kernel) + w["bias"]  # cols: (H, W, in, kh, kw)
    return np.maximum(out, 0.0)


def batch_norm(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    return (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + 1e-3) * w["gamma"] + w["beta"]


def max_pool_same(x: np.ndarray, p: int) -> np.ndarray:
    h, w, c = x.shape
    ph, pw = -h % p, -w % p
    x = np.pad(x, ((0, ph), (0, pw), (0, 0)), constant_values=-np.inf)
    return x.reshape((h + ph) // p, p, (w + pw) // p, p, c).max(axis=(1, 3))


def head(x: np.ndarray, dense: list[dict[str, np.ndarray]]) -> float:
    """Flatten (channels-last) -> Dense 16 -> LeakyReLU(0.1) -> Dense 1; the pre-sigmoid value."""
    y = x.reshape(-1) @ dense[0]["kernel"] + dense[0]["bias"]
    y = np.where(y > 0, y, 0.1 * y)
    return float((y @ dense[1]["kernel"] + dense[1]["bias"])[0])


def inception(x: np.ndarray, convs: list[dict[str, np.ndarray]]) -> np.ndarray:
    x1 = conv_same(x, convs[0])
    x2 = conv_same(conv_same(x, convs[1]), convs[2])
    x3 = conv_same(conv_same(x, convs[3]), convs[4], dilation=2)
    x4 = conv_same(conv_same(x, convs[5]), convs[6], dilation=3)
    return np.concatenate([x1, x2, x3, x4], axis=-1)


def keras_meso4(x: np.ndarray, layers: Layers) -> float:
    conv, bn = layers["conv2d"], layers["batch_normalization"]
    for i, pool in enumerate((2, 2, 2, 4)):
        x = max_pool_same(batch_norm(conv_same(x, conv[i]), bn[i]), pool)
    return head(x, layers["dense"])


def keras_mesoinception4(x: np.ndarray, layers: Layers) -> float:
    conv, bn = layers["conv2d"], layers["batch_normalization"]
    x = max_pool_same(batch_norm(inception(x, conv[0:7]), bn[0]), 2)
    x = max_pool_same(batch_norm(inception(x, conv[7:14]), bn[1]), 2)
    x = max_pool_same(batch_norm(conv_same(x, conv[14]), bn[2]), 2)
    x = max_pool_same(batch_norm(conv_same(x, conv[15]), bn[3]), 4)
    return head(x, layers["dense"])


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imported(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("weights")
    import_weights("mesonet", shared_data / "weights" / "mesonet", out)
    return out


def _rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


@pytest.fixture(scope="module")
def frames(shared_data: Path) -> dict[str, list[np.ndarray]]:
    """The authors' test face frames, as read (sizes 208..342 px), by class folder."""
    root = shared_data / "deepfake" / "frames"
    out = {cls: [_rgb(p) for p in sorted((root / cls).glob("*.jpg"))] for cls in ("real", "df")}
    assert all(len(v) == 2 for v in out.values())
    return out


def to_256(image: np.ndarray) -> np.ndarray:
    """256x256 the way the manifest says: INTER_AREA when shrinking, INTER_LINEAR when enlarging."""
    flag = cv2.INTER_AREA if image.shape[0] * image.shape[1] > 256 * 256 else cv2.INTER_LINEAR
    return image if image.shape[:2] == (256, 256) else cv2.resize(image, (256, 256), interpolation=flag)


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(H5))
def test_torch_port_equals_numpy_keras(
    name: str, shared_data: Path, imported: Path, frames: dict[str, list[np.ndarray]]
) -> None:
    layers = read_h5(shared_data / "weights" / "mesonet" / H5[name])
    forward = keras_meso4 if name.startswith("meso4.") else keras_mesoinception4
    images = [to_256(im) for im in frames["real"] + frames["df"]]
    keras_p_real = np.array([forward(im.astype(np.float64) / 255.0, layers) for im in images])

    model = create_model(name, weights_dir=imported)
    fake_logits = model.predict(images)
    # the authors' sigmoid is P(real); trueframe's logit is the log-odds of fake
    np.testing.assert_allclose(fake_logits, -keras_p_real, rtol=0, atol=1e-4)
    keras_sigmoid = 1.0 / (1.0 + np.exp(-keras_p_real))
    torch_sigmoid = torch.sigmoid(-torch.from_numpy(fake_logits).double()).numpy()
    np.testing.assert_allclose(torch_sigmoid, keras_sigmoid, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", list(H5))
def test_preprocessing_belongs_to_the_checkpoint(
    name: str, imported: Path, frames: dict[str, list[np.ndarray]]
) -> None:
    """Frames of any size go through the manifest's resize; pinned against an explicit one."""
    model = create_model(name, weights_dir=imported)
    raw = frames["real"] + frames["df"]
    assert {im.shape[0] for im in raw} != {256}
    np.testing.assert_allclose(model.predict(raw), model.predict([to_256(im) for im in raw]), atol=1e-5)


@pytest.mark.parametrize("name", list(H5))
def test_deepfake_frames_score_higher_than_real_ones(
    name: str, imported: Path, frames: dict[str, list[np.ndarray]]
) -> None:
    model = create_model(name, weights_dir=imported)
    real, fake = model.predict(frames["real"]), model.predict(frames["df"])
    assert fake.mean() > real.mean()
    if name.endswith(".df"):  # trained on this kind of forgery: every fake above every real
        assert fake.min() > real.max()
        assert (fake > 0).all()
        assert (real < 0).all()


def test_every_registered_model_runs_untrained() -> None:
    """Smoke test: each manifest model of a registered architecture builds and runs a forward pass."""
    manifest = load_manifest()
    names = list_models()
    assert {manifest.models[n].arch for n in names} >= {"meso4", "mesoinception4"}
    rng = np.random.default_rng(1)
    for name in names:
        model = create_model(name, pretrained=False)
        h, w = model.spec.size
        logits = model.predict([rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(3)])
        assert logits.shape == (3,)
        assert np.isfinite(logits).all()
