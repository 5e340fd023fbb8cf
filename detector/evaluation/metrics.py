"""Detection metrics: ranking, threshold and calibration quality, with 95% bootstrap intervals.

All functions take labels (1 = fake) and scores where larger means more likely fake: logits or
probabilities (ranking metrics do not care). Calibration metrics take probabilities. The dev
sets are small, so every figure that is reported comes with a percentile bootstrap interval
(:func:`bootstrap`), resampling whole clusters (a video's frames) where items are not independent;
ECE's interval is shifted by the resampling's bias (``centred``), and a proportion such as a
false-positive rate gets its exact binomial interval (:func:`proportion`) instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from detector.scoring.calibration import ECE_BINS, expected_calibration_error
from detector.scoring.logodds import sigmoid

EPS = 1e-7


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates, precisions) at every distinct threshold, from (0, 0).

    The same points as scikit-learn's ``roc_curve``/``precision_recall_curve`` without their input
    checks, which cost milliseconds a call: bootstraps call these thousands of times.
    """
    y = np.asarray(labels, np.float64)
    order = np.argsort(-np.asarray(scores, np.float64), kind="mergesort")
    s, y = np.asarray(scores, np.float64)[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last index of each distinct score
    tps = np.cumsum(y)[last]
    fps = last + 1 - tps
    fpr = np.r_[0.0, fps / max(fps[-1], 1.0)]
    tpr = np.r_[0.0, tps / max(tps[-1], 1.0)]
    precision = np.r_[1.0, tps / (tps + fps)]
    return fpr, tpr, precision


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The error rate where the false-positive and false-negative rates are equal (ROC interpolation)."""
    fpr, tpr, _ = roc_points(labels, scores)
    fnr = 1.0 - tpr
    diff = fpr - fnr
    i = int(np.argmax(diff >= 0))
    if i == 0:
        return float((fpr[0] + fnr[0]) / 2.0)
    # linear interpolation between ROC points i-1 and i, where fpr - fnr changes sign
    d0, d1 = diff[i - 1], diff[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def binary_metrics(
    labels: Sequence[int] | np.ndarray, logits: Sequence[float] | np.ndarray, probs: np.ndarray | None = None
) -> dict[str, float]:
    """AUC, AP, EER, accuracy at probability 0.5, log loss, Brier score, ECE (15 bins), counts.

    ``probs`` are calibrated probabilities when the model has a calibration, else ``sigmoid(logits)``.
    Ranking metrics are NaN when only one class is present.
    """
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(logits, dtype=np.float64)
    p = np.clip(sigmoid(s) if probs is None else np.asarray(probs, dtype=np.float64), EPS, 1.0 - EPS)
    both = len(np.unique(y)) == 2
    return {
        "n": float(len(y)),
        "n_fake": float(y.sum()),
        "auc": float(roc_auc_score(y, s)) if both else float("nan"),
        "ap": float(average_precision_score(y, s)) if both else float("nan"),
        "eer": equal_error_rate(y, s) if both else float("nan"),
        "accuracy": float(((p >= 0.5).astype(np.int64) == y).mean()),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(p, y, ECE_BINS),
    }


def format_table(rows: dict[str, dict[str, float]], keys: Sequence[str] | None = None) -> str:
    """A Markdown table: one row per name, one column per metric."""
    keys = list(keys or ["n", "auc", "ap", "eer", "accuracy", "log_loss", "brier", "ece"])
    lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, metrics in rows.items():
        cells = [f"{int(metrics[k])}" if k in ("n", "n_fake") else f"{metrics[k]:.3f}" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney U with mid-ranks for ties, equal to scikit-learn's); NaN with one class."""
    from scipy.stats import rankdata  # type: ignore[import-untyped]

    y = np.asarray(labels) == 1
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, np.float64))
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def ap(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (fake = positive), as scikit-learn computes it; NaN with one class only."""
    y = np.asarray(labels)
    if len(np.unique(y)) != 2:
        return float("nan")
    _fpr, tpr, precision = roc_points(y, scores)
    return float(np.sum(np.diff(tpr) * precision[1:]))


def eer(labels: np.ndarray, scores: np.ndarray) -> float:
    """Equal error rate; NaN with one class only."""
    y = np.asarray(labels)
    return equal_error_rate(y, np.asarray(scores)) if len(np.unique(y)) == 2 else float("nan")


def ece(labels: np.ndarray, probs: np.ndarray) -> float:
    """Expected calibration error of probabilities (15 equal-width bins)."""
    return expected_calibration_error(np.asarray(probs, np.float64), np.asarray(labels), ECE_BINS)


def ece_floor(probs: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """``(median, 95th percentile)`` ECE of a *perfectly calibrated* score at this sample size.

    Labels are drawn as Bernoulli(p) from the score's own probabilities, so any ECE above zero is
    sampling noise alone: on a few dozen items this floor is far above a 0.05 target, and a measured
    ECE inside it says the set is too small to show miscalibration, not that there is none.
    """
    p = np.asarray(probs, np.float64)
    if not len(p):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = [ece((rng.random(len(p)) < p).astype(np.float64), p) for _ in range(n)]
    return float(np.median(draws)), float(np.percentile(draws, 95))


def bootstrap(
    metric: Callable[[np.ndarray, np.ndarray], float],
    labels: np.ndarray,
    scores: np.ndarray,
    clusters: np.ndarray | None = None,
    n: int = 1000,
    seed: int = 0,
    centred: bool = False,
) -> tuple[float, float, float]:
    """``(value, low, high)``: the metric and its 95% percentile bootstrap interval.

    Resamples items with replacement, or whole ``clusters`` (e.g. all frames of one video) when
    given, stratified by label so every resample holds both classes. Resamples where the metric is
    undefined are skipped. With ``centred`` the interval is shifted by the bootstrap's estimate of
    the metric's bias (mean of the draws minus the value), clipped at 0: a resample repeats items,
    which fills ECE's bins unevenly and inflates it, so on 49 dev videos the plain percentile
    interval of an ECE of 0.088 was [0.099, 0.217], an interval that excludes its own estimate.
    """
    y, s = np.asarray(labels), np.asarray(scores, np.float64)
    value = metric(y, s)
    groups = np.arange(len(y)) if clusters is None else np.asarray(clusters)
    members: dict[object, np.ndarray] = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}
    strata = [[g for g, idx in members.items() if int(y[idx[0]]) == c] for c in (0, 1)]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n):
        picked: list[object] = []
        for stratum in strata:
            picked += [stratum[i] for i in rng.integers(0, len(stratum), len(stratum))] if stratum else []
        idx = np.concatenate([members[g] for g in picked]) if picked else np.array([], int)
        v = metric(y[idx], s[idx]) if len(idx) else float("nan")
        if not np.isnan(v):
            draws.append(v)
    if not draws:
        return value, float("nan"), float("nan")
    low, high = np.percentile(draws, [2.5, 97.5])
    if centred:
        bias = float(np.mean(draws)) - value
        low, high = max(0.0, low - bias), max(0.0, high - bias)
    return value, float(low), float(high)


def proportion(hits: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """``(k / n, low, high)``: a proportion and its exact (Clopper-Pearson) interval.

    Not a bootstrap: resampling 0 accused items out of 31 gives [0, 0], a certainty that 31 items
    cannot give; the exact binomial interval is [0, 0.112]. NaNs when ``n`` is 0.
    """
    from scipy.stats import beta

    if n <= 0:
        return float("nan"), float("nan"), float("nan")
    if not 0 <= hits <= n:
        raise ValueError(f"hits must be within 0..{n}, got {hits}")
    tail = (1.0 - level) / 2.0
    low = 0.0 if hits == 0 else float(beta.ppf(tail, hits, n - hits + 1))
    high = 1.0 if hits == n else float(beta.ppf(1.0 - tail, hits + 1, n - hits))
    return hits / n, low, high
