"""How far a section's own sub-model may move from the shared one: chosen by grouped cross-validation.

A media kind's section fits its own sub-model per signal pattern as soon as the pattern has
:data:`~detector.scoring.fusion.fit.MIN_ROWS_PER_CLASS` rows of each class. Ten real rows are
enough to fit two weights but not to trust them: on the dev set's calibrate half the image
section's face-and-synthetic pattern rested on 11 real images and gave the synthetic-image model
2.6 times the shared weight, and real face photos outside the dev set were called
``ai_generated`` more often (README, face model v4). The fix is the usual one for a small group
next to a large one: fit the section's weights with a penalty ``strength * ||w - w_shared||^2``
that pulls them towards the shared section's, and let the data say how hard to pull. Only patterns
with fewer than :data:`~detector.scoring.fusion.fit.SCARCE_ROWS_PER_CLASS` rows of a class are
pulled (:func:`~detector.scoring.fusion.fit.fit_stack` says why). The same choice serves a section
pulled towards zero weights, i.e. towards its base rate (degraded videos, few clips of weak
evidence: ``fit_stack(to_none=True)``); there the target is zero in every fold.

:func:`choose_strength` scores every strength of :data:`STRENGTHS` by the log-loss of out-of-fold
predictions, with folds made of whole *groups* (every copy and variant of one clip or identity in
the same fold, so a file's matched copy never predicts the file), and returns the strength of the
lowest loss, or the strongest whose loss ties with it. A tie is judged on the *paired* excess
over the best across the repeated deals of groups into folds: within one standard error of that
excess, the two strengths differ only by how the folds fell, and the stronger pull is kept
(until 2026-12-02 only a difference under 1e-6 was a tie, so the image face-and-synthetic pattern
flipped between strengths 0.01 and 0.03, whose losses differ by 0.0001, when the calibrators were
reparametrised). The one-standard-error rule on per-row losses was tried and rejected: per-row
log-losses spread so widely at 70-250 rows that it chose the full pull on every pattern.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

STRENGTHS = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)
"""Candidate penalty strengths (per mean log-loss); 100 holds the weights at the shared ones."""
FOLDS = 5
REPEATS = 5
TIE = 1e-6
"""Losses closer than this always tie, settled towards the stronger pull (:func:`ties_with_best`)."""


@dataclass(frozen=True)
class Choice:
    """The chosen strength and the cross-validated log-loss of every candidate (for the record)."""

    strength: float
    losses: dict[float, float]
    folds: int
    """Folds scored, over all repeats."""


def group_folds(groups: np.ndarray, labels: np.ndarray, k: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Fold number per row; every row of a group in one fold, fake and real groups spread evenly.

    Groups are dealt round-robin in a seeded order within each class (a group's class is its
    majority label), so each fold holds about ``1/k`` of the real groups and of the fake groups.
    """
    names = np.asarray(groups).astype(str)
    unique = sorted(set(names.tolist()))
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for cls in (0, 1):
        members = [g for g in unique if (labels[names == g].mean() >= 0.5) == bool(cls)]
        for i, g in enumerate(rng.permutation(members).tolist()):
            fold_of[g] = i % k
    return np.array([fold_of[g] for g in names.tolist()])


def _log_loss(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z) - y * z


def choose_strength(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    target: Callable[[np.ndarray], np.ndarray],
    k: int = FOLDS,
) -> Choice:
    """The pull for rows ``x`` / labels ``y`` towards ``target(held_out_groups)`` (module docstring).

    ``target`` refits the shared weights without the held-out groups, so a fold's own rows never
    shape what its training part is pulled towards (the shared section contains them). The
    cross-validation is repeated over :data:`REPEATS` seeded fold assignments and the losses
    averaged, so the choice does not hang on how 30 groups happened to be dealt; the strongest
    pull that :func:`ties_with_best` with the lowest mean is chosen. Folds whose
    training part lacks a class are skipped; with no usable fold the full pull is returned, as the
    section cannot show its own pattern is better.
    """
    from detector.scoring.fusion.fit import fit_submodel

    x = np.asarray(x, np.float64).reshape(len(y), -1)
    names = np.asarray(groups).astype(str)
    per_deal: list[dict[float, float]] = []
    counted = 0
    for seed in range(REPEATS):
        folds = group_folds(names, y, k, seed)
        usable = [f for f in range(k) if len(np.unique(y[folds != f])) == 2 and (folds == f).any()]
        if not usable:
            continue
        rows = np.isin(folds, usable)
        counted += len(usable)
        targets = {f: target(np.unique(names[folds == f])) for f in usable}
        losses = {}
        for strength in STRENGTHS:
            z = np.full(len(y), np.nan)
            for f in usable:
                train = folds != f
                b, w = fit_submodel(x[train], y[train], toward=targets[f], strength=strength)
                z[folds == f] = b + x[folds == f] @ np.asarray(w)
            losses[strength] = float(_log_loss(z[rows], y[rows]).mean())
        per_deal.append(losses)
    if not counted:
        return Choice(STRENGTHS[-1], {}, 0)
    table = np.array([[deal[s] for s in STRENGTHS] for deal in per_deal])  # deals x strengths
    means = table.mean(axis=0)
    best = int(np.argmin(means))
    strength = max(s for i, s in enumerate(STRENGTHS) if ties_with_best(table[:, i] - table[:, best]))
    return Choice(strength, {s: round(float(v), 5) for s, v in zip(STRENGTHS, means, strict=True)}, counted)


def ties_with_best(excess: np.ndarray) -> bool:
    """A strength ties with the best when its mean excess loss over the deals is within the
    standard error of that paired excess (or :data:`TIE`): a difference the deal of groups into
    folds alone produces is no evidence for the weaker pull."""
    mean = float(excess.mean())
    spread = float(excess.std(ddof=1) / np.sqrt(excess.size)) if excess.size > 1 else 0.0
    return mean <= max(spread, TIE)
