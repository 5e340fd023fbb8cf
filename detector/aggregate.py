"""Provisional aggregation of face-crop logits into track and item scores.

Documented as provisional: the calibration issue replaces the item score with a fused,
calibrated probability. Track logit = mean of its crop logits; item logit = mean of track logits
weighted by track length x mean face side (a long, large face counts more than a brief, tiny one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TrackEvidence:
    """The per-crop logits of one face track and the size of its face."""

    logits: Sequence[float]
    mean_side: float


def track_logit(logits: Sequence[float]) -> float | None:
    """Mean logit of a track's crops; None for an empty track."""
    if not logits:
        return None
    return float(sum(logits) / len(logits))


def item_logit(tracks: Sequence[TrackEvidence]) -> float | None:
    """Weighted mean of track logits (weight = crops x mean side); None without tracks."""
    total = 0.0
    weight_sum = 0.0
    for track in tracks:
        logit = track_logit(track.logits)
        if logit is None:
            continue
        weight = len(track.logits) * max(track.mean_side, 1.0)
        total += weight * logit
        weight_sum += weight
    if weight_sum == 0.0:
        return None
    return total / weight_sum
