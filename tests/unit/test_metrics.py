"""The fast ranking metrics the bootstraps use equal scikit-learn's, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from detector.evaluation.metrics import ap, auc, ece, eer, equal_error_rate, roc_points


@pytest.mark.parametrize("seed", range(5))
def test_auc_ap_and_roc_points_equal_scikit_learn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = np.r_[0, 1, rng.integers(0, 2, 60)]
    s = np.round(rng.normal(size=y.size) + y, 1)  # rounding makes ties
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert ap(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    fpr, tpr, _ = roc_points(y, s)
    ref_fpr, ref_tpr, _ = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, ref_tpr, atol=1e-12)
    assert 0.0 <= eer(y, s) <= 1.0


def test_one_class_gives_nan_not_an_error() -> None:
    y, s = np.zeros(5), np.arange(5.0)
    assert np.isnan(auc(y, s))
    assert np.isnan(ap(y, s))
    assert np.isnan(eer(y, s))
    assert equal_error_rate(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 0.0


def test_ece_floor_is_the_noise_of_a_calibrated_score_at_that_size() -> None:
    from detector.evaluation.metrics import ece_floor

    rng = np.random.default_rng(3)
    small, large = rng.uniform(0, 1, 40), rng.uniform(0, 1, 4000)
    small_median, small_high = ece_floor(small, n=300)
    large_median, large_high = ece_floor(large, n=100)
    assert small_median > 0.1 > 0.03 > large_median  # 40 items cannot show an ECE of 0.05
    assert small_high > small_median
    assert large_high > large_median
    # a calibrated score's own measured ECE lies under the floor's 95th percentile most of the time
    hits = [ece((rng.random(40) < small).astype(float), small) <= small_high for _ in range(200)]
    assert 0.9 <= np.mean(hits) <= 1.0
    assert all(np.isnan(v) for v in ece_floor(np.array([])))


def _binomial_cdf(k: int, n: int, p: float) -> float:
    from math import comb

    return sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize(("hits", "n"), [(0, 31), (1, 115), (5, 20), (31, 31)])
def test_a_proportion_gets_its_exact_binomial_interval(hits: int, n: int) -> None:
    from detector.evaluation.metrics import proportion

    value, low, high = proportion(hits, n)
    assert value == hits / n
    # Clopper-Pearson: each bound is where the observed count becomes a 2.5% tail
    if hits > 0:
        assert 1 - _binomial_cdf(hits - 1, n, low) == pytest.approx(0.025, abs=1e-6)
    else:
        assert low == 0.0
    if hits < n:
        assert _binomial_cdf(hits, n, high) == pytest.approx(0.025, abs=1e-6)
    else:
        assert high == 1.0


def test_no_hits_in_a_small_set_is_not_a_certain_zero() -> None:
    from detector.evaluation.metrics import proportion
    from detector.evaluation.suite import rate_ci

    # none of 31 real videos accused: a bootstrap says [0, 0]; 31 items bound the rate only by 11.2%
    assert rate_ci([False] * 31) == pytest.approx([0.0, 0.0, 0.1122], abs=1e-4)
    assert all(np.isnan(v) for v in proportion(0, 0))
    with pytest.raises(ValueError, match="within"):
        proportion(4, 3)


def test_centred_ece_interval_holds_its_own_estimate() -> None:
    from detector.evaluation.metrics import bootstrap

    # three groups whose fake shares equal their probabilities: a perfectly calibrated score, ECE 0
    p = np.r_[np.full(20, 0.5), np.full(20, 0.1), np.full(10, 0.9)]
    y = np.r_[np.ones(10), np.zeros(10), np.ones(2), np.zeros(18), np.ones(9), np.zeros(1)]
    value, low, high = bootstrap(ece, y, p, n=300)
    assert value == pytest.approx(0.0, abs=1e-12)
    assert low > 0.01  # resampling repeats items and inflates ECE: the plain interval misses it
    c_value, c_low, c_high = bootstrap(ece, y, p, n=300, centred=True)
    assert c_value == value
    assert c_low == 0.0 <= c_high < high  # shifted down by the bias, clipped at zero
