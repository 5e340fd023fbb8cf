"""Detection metrics and plots for ``scripts/evaluate.py``: ranking, threshold and calibration quality.

All functions take labels (1 = fake) and *logits* (positive = fake); probabilities are
``sigmoid(logit)`` after the model's calibration when it has one. The accuracy threshold is the
calibrated probability 0.5, i.e. logit 0 when the model is uncalibrated.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score, roc_curve

from detector.calibration import ECE_BINS, expected_calibration_error, reliability_bins, sigmoid

EPS = 1e-7


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The error rate where the false-positive and false-negative rates are equal (ROC interpolation)."""
    fpr, tpr, _ = roc_curve(labels, scores)
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


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """ROC curves (name -> (labels, scores)) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, (labels, scores) in curves.items():
        if len(np.unique(labels)) == 2:
            fpr, tpr, _ = roc_curve(labels, scores)
            ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, scores):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(labels: np.ndarray, probs: np.ndarray, path: Path, title: str) -> None:
    """Reliability diagram (fraction fake vs mean predicted probability per bin) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = reliability_bins(np.asarray(probs), np.asarray(labels), ECE_BINS)
    used = bins.count > 0
    ax_width = 1.0 / ECE_BINS
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.bar(
        bins.edges[:-1][used],
        bins.frequency[used],
        width=ax_width,
        align="edge",
        alpha=0.6,
        edgecolor="black",
        label="fraction fake",
    )
    ax.plot(bins.mean_prob[used], bins.frequency[used], "o", color="C1", label="bin mean P(fake)")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(xlabel="predicted P(fake)", ylabel="observed fraction fake", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
