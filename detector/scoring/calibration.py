"""Per-model calibration: raw fake-logits -> calibrated logits, so P(fake) means what it says.

Three methods, all fitted on a labelled calibration set (label 1 = manipulated or synthetic):

* ``temperature``: ``z / T`` (one parameter, keeps the ranking and the 0.5 point; Guo et al. 2017).
* ``platt``: ``a * z + b`` by logistic regression (scikit-learn), also moves the 0.5 point.
* ``isotonic``: a monotone step function (scikit-learn); flexible, so it needs at least
  :data:`ISOTONIC_MIN_SAMPLES` samples, otherwise :class:`CalibrationDataError`.

A fitted :class:`Calibrator` serialises to the ``calibration`` table of the model's manifest entry
(:meth:`Calibrator.to_table`) and is rebuilt from it (:meth:`Calibrator.from_manifest`).
:func:`expected_calibration_error` is the metric used everywhere (15 equal-width bins).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from detector.errors import InvalidRequest
from detector.scoring.logodds import logit, sigmoid

if TYPE_CHECKING:
    from detector.models._manifest import Calibration

Method = Literal["temperature", "platt", "isotonic"]
METHODS: tuple[str, ...] = get_args(Method)
ISOTONIC_MIN_SAMPLES = 1000
ECE_BINS = 15


class CalibrationDataError(InvalidRequest):
    """The calibration set cannot support the requested fit (too small, one class only, bad shape)."""

    code = "calibration_data_insufficient"


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin mean confidence, observed frequency of label 1 and count (empty bins have count 0)."""

    edges: np.ndarray
    mean_prob: np.ndarray
    frequency: np.ndarray
    count: np.ndarray


def _binned(
    p: np.ndarray, y: np.ndarray, n_bins: int, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bin edges and per-bin weighted mean probability, frequency of label 1 and weight mass."""
    w = np.ones_like(p) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    mass = np.bincount(index, weights=w, minlength=n_bins)
    safe = np.where(mass > 0, mass, 1.0)
    mean_prob = np.bincount(index, weights=w * p, minlength=n_bins) / safe
    frequency = np.bincount(index, weights=w * y, minlength=n_bins) / safe
    return edges, mean_prob, frequency, mass


def reliability_bins(
    probs: Sequence[float] | np.ndarray, labels: Sequence[float] | np.ndarray, n_bins: int = ECE_BINS
) -> ReliabilityBins:
    """Equal-width bins of P(label 1) over [0, 1] (the last bin includes 1.0)."""
    p, y = _check_xy(probs, labels)
    edges, mean_prob, frequency, mass = _binned(p, y, n_bins, None)
    return ReliabilityBins(edges, mean_prob, frequency, np.rint(mass).astype(np.int64))


def expected_calibration_error(
    probs: Sequence[float] | np.ndarray,
    labels: Sequence[float] | np.ndarray,
    n_bins: int = ECE_BINS,
    weights: np.ndarray | None = None,
) -> float:
    """ECE: mass-weighted mean |observed frequency - mean predicted probability| over the bins.

    Each row counts once, or by ``weights`` (e.g. :func:`even_odds_weights`: the ECE at even odds).
    """
    p, y = _check_xy(probs, labels)
    _, mean_prob, frequency, mass = _binned(p, y, n_bins, weights)
    return float(np.sum(mass * np.abs(frequency - mean_prob)) / mass.sum())


def even_odds_weights(labels: Sequence[float] | np.ndarray) -> np.ndarray:
    """Row weights under which both classes weigh the same (mean weight 1).

    A calibrator fitted with them does not learn its calibration set's class mix as a prior: its
    probability is the model's evidence at even odds (the fusion stack states the prior).
    """
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    fakes = float(y.sum())
    reals = float(y.size) - fakes
    if fakes == 0.0 or reals == 0.0:
        raise CalibrationDataError("the calibration set needs both authentic and manipulated samples")
    return np.where(y == 1.0, y.size / (2.0 * fakes), y.size / (2.0 * reals))


def ece_noise_floor(
    probs: Sequence[float] | np.ndarray, n_bins: int = ECE_BINS, draws: int = 200, seed: int = 0
) -> float:
    """Mean ECE of a *perfectly calibrated* predictor with these probabilities (labels ~ Bernoulli(p)).

    ECE is biased upwards on small sets; a measured ECE near this floor is as good as the set can show.
    """
    p = np.clip(np.asarray(probs, dtype=np.float64).reshape(-1), 0.0, 1.0)
    rng = np.random.default_rng(seed)
    return float(
        np.mean(
            [
                expected_calibration_error(p, (rng.random(p.size) < p).astype(np.float64), n_bins)
                for _ in range(draws)
            ]
        )
    )


def _check_xy(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    xs = np.asarray(x, dtype=np.float64).reshape(-1)
    ys = np.asarray(y, dtype=np.float64).reshape(-1)
    if xs.shape != ys.shape or xs.size == 0:
        raise CalibrationDataError(
            f"need equally long, non-empty scores and labels, got {xs.size} and {ys.size}"
        )
    if not np.all(np.isfinite(xs)):
        raise CalibrationDataError("scores contain NaN or infinity")
    if not np.all((ys == 0) | (ys == 1)):
        raise CalibrationDataError("labels must be 0 (authentic) or 1 (manipulated or synthetic)")
    return xs, ys


@dataclass(frozen=True)
class Calibrator:
    """A fitted mapping from a model's raw fake-logits to calibrated logits."""

    method: Method
    parameters: dict[str, float | list[float]]
    fitted_on: str = ""
    n: int = 0
    ece_before: float | None = None
    ece_after: float | None = None

    def logits(self, raw: Sequence[float] | np.ndarray) -> np.ndarray:
        """Calibrated log-odds (float64) of raw logits."""
        z = np.asarray(raw, dtype=np.float64)
        if self.method == "temperature":
            return z / float(self._scalar("temperature"))
        if self.method == "platt":
            return float(self._scalar("a")) * z + float(self._scalar("b"))
        x = np.asarray(self.parameters["x"], dtype=np.float64)
        y = np.asarray(self.parameters["y"], dtype=np.float64)
        return logit(np.interp(z, x, y))

    def probabilities(self, raw: Sequence[float] | np.ndarray) -> np.ndarray:
        """Calibrated P(manipulated or synthetic) of raw logits."""
        return sigmoid(self.logits(raw))

    def logit_of(self, raw: float) -> float:
        """One calibrated logit."""
        return float(self.logits(np.asarray([raw]))[0])

    def _scalar(self, name: str) -> float:
        value = self.parameters[name]
        if isinstance(value, list):
            raise CalibrationDataError(f"{self.method} parameter {name!r} must be a number")
        return float(value)

    def to_table(self) -> dict[str, Any]:
        """The manifest ``calibration`` table (only plain TOML types)."""
        table: dict[str, Any] = {
            "method": self.method,
            "parameters": dict(self.parameters),
            "fitted_on": self.fitted_on,
            "n": self.n,
        }
        if self.ece_before is not None:
            table["ece_before"] = round(self.ece_before, 5)
        if self.ece_after is not None:
            table["ece_after"] = round(self.ece_after, 5)
        return table

    @classmethod
    def from_manifest(cls, calibration: Calibration) -> Calibrator:
        """Rebuild from a manifest entry's validated ``calibration`` table."""
        return cls(
            method=calibration.method,
            parameters=dict(calibration.parameters),
            fitted_on=calibration.fitted_on,
            n=calibration.n,
            ece_before=calibration.ece_before,
            ece_after=calibration.ece_after,
        )

    @classmethod
    def identity(cls) -> Calibrator:
        """No calibration: temperature 1 (used when a model has no fitted table)."""
        return cls(method="temperature", parameters={"temperature": 1.0}, fitted_on="none")


def fit_temperature(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The temperature T > 0 minimising the (row-weighted) log-loss of ``sigmoid(z / T)``."""
    from scipy.optimize import minimize_scalar  # type: ignore[import-untyped]

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        # log(1 + e^z) - y z, computed stably
        return float(np.average(np.logaddexp(0.0, z) - labels * z, weights=weights))

    result = minimize_scalar(nll, bounds=(-6.0, 6.0), method="bounded")
    return float(np.exp(result.x))


def fit_platt(
    logits: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, float]:
    """(a, b) of ``sigmoid(a z + b)`` by (barely regularised, row-weighted) logistic regression."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
    model.fit(logits.reshape(-1, 1), labels.astype(np.int64), sample_weight=weights)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def fit_isotonic(
    logits: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> tuple[list[float], list[float]]:
    """Knots (x, y) of the (row-weighted) isotonic map from raw logit to P(fake)."""
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(logits, labels, sample_weight=weights)
    return [float(v) for v in model.X_thresholds_], [float(v) for v in model.y_thresholds_]


def fit_calibrator(
    logits: Sequence[float] | np.ndarray,
    labels: Sequence[float] | np.ndarray,
    method: Method = "temperature",
    fitted_on: str = "",
    even_odds: bool = False,
) -> Calibrator:
    """Fit ``method`` on raw logits and 0/1 labels; ECE before/after is measured on the same data.

    With ``even_odds`` both classes weigh the same in the fit and in its ECE
    (:func:`even_odds_weights`), so the probability does not carry the set's class mix.

    Raises :class:`CalibrationDataError` for an unknown method, a set with one class only, or
    isotonic regression on fewer than :data:`ISOTONIC_MIN_SAMPLES` samples.
    """
    z, y = _check_xy(logits, labels)
    if method not in METHODS:
        raise CalibrationDataError(f"unknown calibration method {method!r}; known: {', '.join(METHODS)}")
    if y.min() == y.max():
        raise CalibrationDataError("the calibration set needs both authentic and manipulated samples")
    params: dict[str, float | list[float]]
    w = even_odds_weights(y) if even_odds else None
    if method == "temperature":
        params = {"temperature": fit_temperature(z, y, w)}
    elif method == "platt":
        a, b = fit_platt(z, y, w)
        params = {"a": a, "b": b}
    else:
        if z.size < ISOTONIC_MIN_SAMPLES:
            raise CalibrationDataError(
                f"isotonic calibration needs at least {ISOTONIC_MIN_SAMPLES} samples, got {z.size}; "
                "use temperature or platt"
            )
        xs, ys = fit_isotonic(z, y, w)
        params = {"x": xs, "y": ys}
    fitted = Calibrator(method=method, parameters=params, fitted_on=fitted_on, n=int(z.size))
    return replace(
        fitted,
        ece_before=expected_calibration_error(sigmoid(z), y, weights=w),
        ece_after=expected_calibration_error(fitted.probabilities(z), y, weights=w),
    )
