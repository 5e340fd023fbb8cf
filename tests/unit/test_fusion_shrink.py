"""The pull of a section's scarce patterns towards the shared section (detector/scoring/fusion/shrink.py)."""

from __future__ import annotations

import numpy as np
import pytest

from detector.scoring.fusion.fit import SCARCE_ROWS_PER_CLASS, Pool, fit_stack, fit_submodel
from detector.scoring.fusion.shrink import (
    FOLDS,
    REPEATS,
    STRENGTHS,
    choose_strength,
    group_folds,
    ties_with_best,
)
from detector.scoring.logodds import sigmoid


def drawn(n: int, weights: tuple[float, ...], bias: float, seed: int) -> tuple:
    """Rows whose labels are drawn from ``sigmoid(bias + x @ weights)`` (so ``weights`` are the
    truth), in groups of two rows."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1.5, (n, len(weights)))
    labels = (rng.random(n) < sigmoid(bias + x @ np.asarray(weights))).astype(float)
    return x, labels, np.array([f"g{seed}-{i // 2}" for i in range(n)])


def test_group_folds_keep_a_group_together_and_spread_both_classes() -> None:
    groups = np.repeat(np.array([f"g{i}" for i in range(30)]), 3)
    labels = np.repeat(np.array([1.0] * 10 + [0.0] * 20), 3)
    for seed in range(3):
        folds = group_folds(groups, labels, seed=seed)
        for g in set(groups):
            assert len(set(folds[groups == g])) == 1
        for f in range(FOLDS):
            assert set(labels[folds == f]) == {0.0, 1.0}  # 10 fake groups over 5 folds: 2 each
    assert not np.array_equal(group_folds(groups, labels, seed=0), group_folds(groups, labels, seed=1))


def test_the_pull_moves_weights_to_the_target_and_zero_pull_changes_nothing() -> None:
    x, y, _ = drawn(200, (2.0,), 0.0, seed=1)
    _, free_w = fit_submodel(x, y)
    _, zero_w = fit_submodel(x, y, toward=np.array([0.3]), strength=0.0)
    _, held_w = fit_submodel(x, y, toward=np.array([0.3]), strength=100.0)
    assert zero_w[0] == pytest.approx(free_w[0], rel=1e-4)
    assert held_w[0] == pytest.approx(0.3, abs=0.01)
    assert free_w[0] > 1.0


def test_cross_validation_pulls_a_few_noisy_rows_and_trusts_many_clear_ones() -> None:
    """Few real rows drawn from the shared pattern: their own fit overfits, so a pull is chosen.
    Many rows of a clearly different pattern: the section's own weights win."""
    x, y, g = drawn(60, (1.0,), 2.0, seed=4)  # about a dozen reals, drawn from the shared pattern
    assert int((y == 0).sum()) < SCARCE_ROWS_PER_CLASS
    few = choose_strength(x, y, g, lambda _held_out: np.array([1.0]))
    assert few.strength > 0.0
    assert few.folds == FOLDS * REPEATS
    assert set(few.losses) == set(STRENGTHS)
    x, y, g = drawn(600, (3.0,), 0.0, seed=5)  # own weight 3 against a target of 0.5
    many = choose_strength(x, y, g, lambda _held_out: np.array([0.5]))
    assert many.strength <= 0.01
    assert many.losses[many.strength] < many.losses[100.0]


def test_the_target_is_refitted_without_the_held_out_groups() -> None:
    x, y, g = drawn(60, (1.0,), 0.0, seed=6)
    seen: list[set[str]] = []

    def target(held_out: np.ndarray) -> np.ndarray:
        seen.append(set(held_out.tolist()))
        return np.array([1.0])

    choose_strength(x, y, g, target)
    assert len(seen) == FOLDS * REPEATS
    for seed in range(REPEATS):
        folds = group_folds(g, y, seed=seed)
        expected = [set(g[folds == f].tolist()) for f in range(FOLDS)]
        assert seen[seed * FOLDS : (seed + 1) * FOLDS] == expected


def test_no_usable_fold_means_the_full_pull() -> None:
    x = np.array([0.5, 1.0, -1.0, 2.0])
    y = np.array([1.0, 1.0, 0.0, 1.0])
    choice = choose_strength(x, y, np.array(["a", "a", "a", "a"]), lambda _h: np.array([1.0]))
    assert choice.strength == STRENGTHS[-1]
    assert choice.folds == 0


def test_only_scarce_patterns_of_a_section_are_pulled() -> None:
    """A section pattern with few reals is pulled towards the shared rows (its pull recorded); one
    with enough rows of each class is fitted on its own even when the shared rows differ."""
    px, py, pg = drawn(600, (0.3, 1.0), 0.0, seed=8)
    pool = Pool(face=px[:, 0], synthetic=px[:, 1], labels=py, groups=pg)
    x, y, groups = drawn(80, (0.3, 1.0), 2.5, seed=9)  # the shared pattern, few reals
    assert int((y == 0).sum()) < SCARCE_ROWS_PER_CLASS
    own = fit_stack(x[:, 0], x[:, 1], y)
    pulled = fit_stack(x[:, 0], x[:, 1], y, toward=pool, groups=groups)
    assert own["face_synthetic"].pull == 0.0
    assert pulled["face_synthetic"].pull > 0.0
    shared_w = pool.target("face_synthetic")(np.array([], dtype=str))
    own_gap = np.abs(np.array([own["face_synthetic"].face, own["face_synthetic"].synthetic]) - shared_w)
    gap = np.abs(np.array([pulled["face_synthetic"].face, pulled["face_synthetic"].synthetic]) - shared_w)
    assert gap.sum() < own_gap.sum()
    # a section with plenty of rows of each class and a different pattern: not pulled
    x2, y2, g2 = drawn(300, (1.5, 3.0), 0.0, seed=10)
    alone = fit_stack(x2[:, 0], x2[:, 1], y2, toward=pool, groups=g2)
    assert all(sub.pull == 0.0 for sub in alone.values())
    assert alone == fit_stack(x2[:, 0], x2[:, 1], y2, groups=g2)  # groups alone only redraw the spread


def test_a_weaker_pull_must_beat_the_stronger_by_more_than_the_deals_spread() -> None:
    # excess loss of a stronger pull over the best, per deal of groups into folds
    assert ties_with_best(np.array([0.0009, -0.0007, 0.0011, -0.0008, 0.0002]))  # noise: keep the stronger
    assert not ties_with_best(np.array([0.010, 0.011, 0.009, 0.0105, 0.0098]))  # consistently worse
    assert ties_with_best(np.zeros(REPEATS))  # the best itself
    assert not ties_with_best(np.array([0.003]))  # one deal: only the numerical tie counts


def test_close_strengths_settle_on_the_stronger_pull() -> None:
    """Two weak pulls whose mean losses differ by less than the deals' spread: the stronger one is
    chosen, not whichever mean happens to be lowest (the old 1e-6 tie rule picks the weaker)."""
    rng = np.random.default_rng(2)  # a draw where 0.003 and 0.01 differ by 0.0003 in mean loss
    groups = np.repeat(np.arange(40), 3)
    y = (np.arange(40) % 2).repeat(3).astype(np.float64)
    x = (1.2 * (2 * y - 1) + rng.normal(0, 1.0, y.size)).reshape(-1, 1)
    choice = choose_strength(x, y, groups, lambda _held: np.array([1.0]))
    lowest = min(choice.losses, key=lambda s: choice.losses[s])
    assert choice.strength > lowest
    assert choice.losses[choice.strength] - choice.losses[lowest] < 0.001
    assert choice.strength < 0.1  # a pull that clearly costs (0.03 and up here) is not a tie


def test_to_none_pulls_weak_evidence_towards_the_base_rate_and_keeps_clear_evidence() -> None:
    """``to_none`` (degraded videos): 70 rows in 35 groups whose labels barely follow the signals;
    the free fit reads noise as weight, the pulled one shrinks it towards 0 and records the pull.
    Without groups nothing is pulled; 600 rows of clear evidence keep most of their weight."""
    x, y, g = drawn(70, (0.3, 0.1), -0.5, seed=21)
    free = fit_stack(x[:, 0], x[:, 1], y, groups=g, replicates=0)
    pulled = fit_stack(x[:, 0], x[:, 1], y, groups=g, replicates=0, to_none=True)
    assert all(sub.pull == 0.0 for sub in free.values())
    assert pulled["face_synthetic"].pull > 0.0
    for pattern, sub in pulled.items():
        assert sub.face + sub.synthetic <= free[pattern].face + free[pattern].synthetic + 1e-9
    total = [sum(sub.face + sub.synthetic for sub in fit.values()) for fit in (pulled, free)]
    assert total[0] < total[1]
    ungrouped = fit_stack(x[:, 0], x[:, 1], y, replicates=0, to_none=True)
    assert ungrouped == fit_stack(x[:, 0], x[:, 1], y, replicates=0)
    x2, y2, g2 = drawn(600, (2.0, 1.0), 0.0, seed=22)
    clear = fit_stack(x2[:, 0], x2[:, 1], y2, groups=g2, replicates=0, to_none=True)["face_synthetic"]
    assert clear.face > 1.5
    assert clear.synthetic > 0.7
