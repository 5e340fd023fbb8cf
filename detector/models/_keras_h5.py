"""Read Keras 2 HDF5 weight files with h5py and map them onto a PyTorch state dict.

Keras names layers ``<kind>_<n>`` in creation order (``conv2d_5``, ``batch_normalization_5``,
``dense_3``...); the counter is per session, so files of the same architecture may start at
different ``n``. An architecture therefore lists, per layer kind, its torch module prefixes in the
order the original Keras code created those layers, and layers are matched by that order.

Layout conversions: Conv2D kernel (kh, kw, in, out) -> (out, in, kh, kw); Dense kernel
(in, out) -> (out, in); BatchNormalization (gamma, beta, moving_mean, moving_variance) ->
(weight, bias, running_mean, running_var).
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np

from detector.errors import ModelError

KERAS_BN_EPSILON = 1e-3
"""Keras' BatchNormalization default epsilon (torch's default is 1e-5)."""

_BN_ORDER = ("gamma", "beta", "moving_mean", "moving_variance")


def read_keras_h5(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{layer name: {weight name (e.g. 'kernel'): float32 array}}`` for layers holding weights."""
    try:
        with h5py.File(path, "r") as fh:
            root = fh.get("model_weights", fh)
            layers: dict[str, dict[str, np.ndarray]] = {}
            for raw in root.attrs["layer_names"]:
                layer = raw.decode() if isinstance(raw, bytes) else str(raw)
                group = root[layer]
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs["weight_names"]]
                if names:
                    layers[layer] = {_short(n): np.asarray(group[n], dtype=np.float32) for n in names}
            return layers
    except (OSError, KeyError) as exc:
        raise ModelError(f"{path} is not a Keras HDF5 weights file: {exc}") from exc


def _short(weight_name: str) -> str:
    """'batch_normalization_5/moving_mean:0' -> 'moving_mean'."""
    return weight_name.rsplit("/", 1)[-1].split(":", 1)[0]


def layers_of_kind(layers: dict[str, dict[str, np.ndarray]], kind: str) -> list[str]:
    """Names of ``kind`` layers (e.g. ``conv2d``) in creation order (numeric suffix, none = 0)."""
    pattern = re.compile(rf"{re.escape(kind)}(?:_(\d+))?")
    found = [(int(m.group(1) or 0), name) for name in layers if (m := pattern.fullmatch(name))]
    return [name for _, name in sorted(found)]


def _convert_layer(kind: str, weights: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    if kind == "conv2d":
        return {
            f"{prefix}.weight": weights["kernel"].transpose(3, 2, 0, 1),
            f"{prefix}.bias": weights["bias"],
        }
    if kind == "dense":
        return {f"{prefix}.weight": weights["kernel"].T, f"{prefix}.bias": weights["bias"]}
    if kind == "batch_normalization":
        gamma, beta, mean, var = (weights[k] for k in _BN_ORDER)
        return {
            f"{prefix}.weight": gamma,
            f"{prefix}.bias": beta,
            f"{prefix}.running_mean": mean,
            f"{prefix}.running_var": var,
            f"{prefix}.num_batches_tracked": np.zeros((), dtype=np.int64),
        }
    raise ModelError(f"no Keras -> torch conversion for layer kind {kind!r}")


def keras_to_state_dict(
    layers: dict[str, dict[str, np.ndarray]],
    order: dict[str, list[str]],
    expected_shapes: dict[str, tuple[int, ...]],
) -> dict[str, np.ndarray]:
    """Map Keras layers onto torch names; every count and shape must match ``expected_shapes``."""
    state: dict[str, np.ndarray] = {}
    for kind, prefixes in order.items():
        names = layers_of_kind(layers, kind)
        if len(names) != len(prefixes):
            raise ModelError(f"expected {len(prefixes)} {kind} layers, the file has {len(names)}: {names}")
        for name, prefix in zip(names, prefixes, strict=True):
            try:
                state.update(_convert_layer(kind, layers[name], prefix))
            except KeyError as exc:
                raise ModelError(f"Keras layer {name} lacks weight {exc}") from exc
    if set(state) != set(expected_shapes):
        missing = sorted(set(expected_shapes) - set(state))
        extra = sorted(set(state) - set(expected_shapes))
        raise ModelError(f"converted weights do not cover the module: missing {missing}, extra {extra}")
    for key, array in state.items():
        if tuple(array.shape) != expected_shapes[key]:
            raise ModelError(f"{key}: converted shape {array.shape} != module shape {expected_shapes[key]}")
    return {k: np.ascontiguousarray(v) for k, v in sorted(state.items())}
