"""How far a fused probability could move had the calibration set been drawn again.

The fusion stack is fitted on a few dozen videos and a few hundred images (the dev set's calibrate
half), so its weights are estimates: refitted on another draw of as many items, the same
item's probability would come out different. The report shows that as a range beside the
probability, so a reader can see how much of a verdict rests on the fit rather than on the
evidence, and that the bands' error rates (measured on the same half) are no more certain than
the fit.

At calibration (:func:`parameter_covariance`) each sub-model is refitted on
:data:`REPLICATES` bootstrap draws of its section's rows: whole groups (every copy and variant of
one clip or identity) drawn with replacement, real and fake ones together, so the share of fakes
varies as it would between two collections of as many items (drawing each class apart would fix
it, and with it every intercept the prior shift sets: a zero-width range for an image scored by a
face the section does not weigh); each refit takes the pattern's rows among the drawn ones, with
the same pull towards the shared section (its strength is not chosen again) and its prior shifted
to the drawn section's balance. Draws without both classes are skipped. The
spread of the refitted (intercept, weights) is stored as their covariance in
``weights/fusion.toml``. At scoring
(:func:`logit_bounds`) the fused logit's standard error is ``sqrt(x' C x)`` for the item's
``x = (1, face logit, synthetic logit)``, and the range is the logit +- :data:`Z95` standard
errors through the sigmoid (a normal approximation on the log-odds scale, which ignores that the
weights are bounded at 0). Where two single-detector sub-models combine either-or (no joint
sub-model; no shipped section does), each end takes both detectors' ends together, which covers at
least 95%.

What it does not include: the uncertainty of each model's own calibrator and of the band
thresholds, and anything about media unlike the calibration set (that is the scope's job,
:mod:`detector.scoring.scope`). It is a floor on the uncertainty, not its whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

REPLICATES = 200
"""Bootstrap refits per sub-model."""
Z95 = 1.959963984540054
"""Standard normal quantile of 0.975: the range is a two-sided 95% one."""
ORDER = ("face", "synthetic")
"""Covariance rows and columns: the intercept, then these weights (0 where a pattern has none)."""


def group_rows(groups: np.ndarray) -> list[np.ndarray]:
    """The row indices of each distinct group (a clip, an identity)."""
    _, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    return [np.flatnonzero(inverse == g) for g in range(int(inverse.max(initial=-1)) + 1)]


def resample(members: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Row indices of one bootstrap draw: as many whole groups (:func:`group_rows`) as there are,
    with replacement."""
    picked = [members[g] for g in rng.choice(len(members), size=len(members), replace=True)]
    return np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)


def parameter_covariance(
    refit: Callable[[np.ndarray], tuple[float, Sequence[float]] | None],
    signals: Sequence[str],
    groups: np.ndarray,
    labels: np.ndarray,
    replicates: int = REPLICATES,
    seed: int = 0,
) -> list[list[float]]:
    """Covariance (3 x 3, order intercept, :data:`ORDER`) of ``refit(rows)`` -> (intercept,
    weights of ``signals``) over bootstrap draws of the rows (:func:`resample`); draws that lack
    a class, or that ``refit`` cannot fit (None), are skipped. Empty (no range is reported) when
    fewer than two draws could be fitted."""
    rng = np.random.default_rng(seed)
    y = np.asarray(labels)
    members = group_rows(groups)
    thetas = []
    for _ in range(replicates):
        rows = resample(members, rng)
        fitted = refit(rows) if len(np.unique(y[rows])) == 2 else None
        if fitted is None:
            continue
        intercept, weights = fitted
        by_name = dict(zip(signals, weights, strict=True))
        thetas.append([intercept, *(by_name.get(name, 0.0) for name in ORDER)])
    if len(thetas) < 2:
        return []
    cov = np.cov(np.asarray(thetas, np.float64), rowvar=False)
    return [[float(v) for v in row] for row in cov]


def standard_error(
    covariance: Sequence[Sequence[float]], face: float | None, synthetic: float | None
) -> float:
    """Standard error of ``intercept + face_w * face + synthetic_w * synthetic`` (missing: 0)."""
    x = np.array([1.0, face or 0.0, synthetic or 0.0])
    variance = float(x @ np.asarray(covariance, np.float64) @ x)
    return math.sqrt(max(variance, 0.0))


def logit_bounds(logit: float, error: float) -> tuple[float, float]:
    """The 95% range of a logit with standard error ``error``."""
    return logit - Z95 * error, logit + Z95 * error
