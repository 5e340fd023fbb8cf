"""The one logistic function and its inverse, for scalars and arrays alike (numerically safe)."""

from __future__ import annotations

from typing import overload

import numpy as np

PROB_EPS = 1e-4
"""Probabilities are clipped to ``[eps, 1 - eps]`` before taking log-odds."""


@overload
def sigmoid(z: float) -> float: ...


@overload
def sigmoid(z: np.ndarray) -> np.ndarray: ...


def sigmoid(z: float | np.ndarray) -> float | np.ndarray:
    """``1 / (1 + exp(-z))`` without overflow; a float for a scalar, float64 array for an array."""
    x = np.asarray(z, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ez = np.exp(x[~pos])
    out[~pos] = ez / (1.0 + ez)
    return float(out) if out.ndim == 0 else out


@overload
def logit(p: float, eps: float = PROB_EPS) -> float: ...


@overload
def logit(p: np.ndarray, eps: float = PROB_EPS) -> np.ndarray: ...


def logit(p: float | np.ndarray, eps: float = PROB_EPS) -> float | np.ndarray:
    """Log-odds of ``p`` clipped to ``[eps, 1 - eps]``; a float for a scalar."""
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    out = np.log(q) - np.log1p(-q)
    return float(out) if out.ndim == 0 else out
