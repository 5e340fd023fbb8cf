"""Aggregation of calibrated logits: crops -> face track -> item, and frames -> synthetic score.

Inputs are *calibrated* log-odds (see :mod:`detector.scoring.calibration`), one per face crop or per frame.

* **Per track** (one face followed over the sampled frames), ``FusionSettings.track_rule``:

  - ``mean`` (default): the mean of the crops' logits.
  - ``confident``: the rule of the DFDC winner (Seferbekov, 2020): when more than 1/2.5 of the
    crops are confidently fake (P > ``confident_fake``) and at least ``confident_min_frames`` are,
    only those crops count (a swap that shows in part of a clip is not averaged away); else, when
    more than 90% of the crops are confidently real (P < ``confident_real``), only those count;
    otherwise all crops count. The chosen crops' logits are averaged.
  - ``top``: the mean of the highest ``top_share`` of the crops' logits (at least one): the top-k
    rule, which a swap shown in part of a clip also survives, without the confident rule's cuts.

* **Per video over tracks**: the mean of track logits weighted by track length x mean face side
  (a long, large face counts more than a brief, tiny one; a face side below 1 px counts as 1).
* **Synthetic-image score**: one logit per frame; per video the same rule as tracks
  (``synthetic_rule``) over the frame series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from detector.scoring.logodds import logit
from detector.settings import FusionSettings

CONFIDENT_FAKE_SHARE = 1.0 / 2.5
CONFIDENT_REAL_SHARE = 0.9


@dataclass(frozen=True)
class TrackEvidence:
    """The calibrated per-crop logits of one face track and the size of its face."""

    logits: Sequence[float]
    mean_side: float


def confident_subset(logits: Sequence[float], settings: FusionSettings) -> list[float]:
    """The crops the DFDC winner's rule keeps (all of them when no confident group dominates)."""
    values = [float(v) for v in logits]
    fake_cut, real_cut = logit(settings.confident_fake), logit(settings.confident_real)
    fakes = [v for v in values if v > fake_cut]
    if len(fakes) > len(values) * CONFIDENT_FAKE_SHARE and len(fakes) >= settings.confident_min_frames:
        return fakes
    reals = [v for v in values if v < real_cut]
    if len(reals) > len(values) * CONFIDENT_REAL_SHARE:
        return reals
    return values


def series_logit(
    logits: Sequence[float], rule: str = "mean", settings: FusionSettings | None = None
) -> float | None:
    """One logit for a series of crop or frame logits under ``rule``; None for an empty series."""
    if len(logits) == 0:
        return None
    s = settings or FusionSettings()
    if rule == "confident":
        chosen = confident_subset(logits, s)
    elif rule == "mean":
        chosen = [float(v) for v in logits]
    elif rule == "top":
        chosen = top_subset(logits, s.top_share)
    else:
        raise ValueError(f"unknown aggregation rule {rule!r}; known: mean, confident, top")
    return float(sum(chosen) / len(chosen))


def top_subset(logits: Sequence[float], share: float) -> list[float]:
    """The highest ``share`` of ``logits`` (rounded up, at least one), highest first."""
    values = sorted((float(v) for v in logits), reverse=True)
    count = math.ceil(share * len(values) - 1e-9)  # 0.3 * 10 is 3.0000000000000004: still 3
    return values[: max(1, count)]


def track_logit(logits: Sequence[float], settings: FusionSettings | None = None) -> float | None:
    """A track's logit from its crops under ``settings.track_rule``; None for an empty track."""
    s = settings or FusionSettings()
    return series_logit(logits, s.track_rule, s)


def track_weight(track: TrackEvidence) -> float:
    """Weight of a track in the video score: crops x mean face side (side at least 1 px)."""
    return len(track.logits) * max(float(track.mean_side), 1.0)


def item_logit(tracks: Sequence[TrackEvidence], settings: FusionSettings | None = None) -> float | None:
    """Weighted mean of track logits (weight :func:`track_weight`); None without scored tracks."""
    total = 0.0
    weight_sum = 0.0
    for track in tracks:
        logit = track_logit(track.logits, settings)
        if logit is None:
            continue
        weight = track_weight(track)
        total += weight * logit
        weight_sum += weight
    if weight_sum == 0.0:
        return None
    return total / weight_sum


def synthetic_logit(frame_logits: Sequence[float], settings: FusionSettings | None = None) -> float | None:
    """The item's synthetic-image logit from per-frame logits under ``settings.synthetic_rule``."""
    s = settings or FusionSettings()
    return series_logit(frame_logits, s.synthetic_rule, s)
