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
