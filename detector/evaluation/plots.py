"""Plots of detection results: ROC curves and reliability diagrams, as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from detector.scoring.calibration import ECE_BINS, reliability_bins


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """ROC curves (name -> (labels, scores)) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    drawn = 0
    for name, (labels, scores) in curves.items():
        if len(np.unique(labels)) == 2:
            fpr, tpr, _ = roc_curve(labels, scores)
            ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, scores):.3f})", clip_on=False)
            drawn += 1
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    # a little room outside [0, 1]: a perfect curve runs along the axes and would hide behind them
    lims = (-0.02, 1.02)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=lims, ylim=lims)
    if drawn:
        ax.legend(loc="lower right", fontsize=7)
    else:
        ax.text(0.5, 0.5, "one class only: no ROC curve", ha="center", va="center", fontsize=8)
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
