"""The calibration range of a fused probability (detector/scoring/fusion/spread.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from detector.provenance.types import ProvenanceReport
from detector.scoring.fusion.fit import fit_stack
from detector.scoring.fusion.rules import Fusion, FusionInputs, SubModel, load_parameters
from detector.scoring.fusion.spread import Z95, group_rows, parameter_covariance, resample
from detector.scoring.fusion.text import range_words
from detector.scoring.logodds import logit
from tests.support.fusion_params import FACE, SYNTH, make_params

COV = [[0.04, 0.0, 0.0], [0.0, 0.09, 0.0], [0.0, 0.0, 0.01]]


def with_spread(**submodels: SubModel) -> Fusion:
    params = make_params()
    params = params.model_copy(update={"submodels": {**params.submodels, **submodels}})
    return Fusion(params, face_model=FACE, synthetic_model=SYNTH)


def test_a_draw_takes_as_many_whole_groups_as_there_are() -> None:
    groups = np.array(["a", "a", "b", "c", "c", "c", "d", "e"])
    members = group_rows(groups)
    assert [m.tolist() for m in members] == [[0, 1], [2], [3, 4, 5], [6], [7]]
    rng = np.random.default_rng(3)
    for _ in range(50):
        drawn = groups[resample(members, rng)]
        for g in set(drawn.tolist()):  # a group is drawn whole, as often as it was picked
            assert (drawn == g).sum() % (groups == g).sum() == 0
        assert sum((drawn == g).sum() // (groups == g).sum() for g in "abcde") == 5
    assert len({tuple(sorted(groups[resample(members, rng)].tolist())) for _ in range(20)}) > 1


def synthetic_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 2.0, n)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(0.3 + 1.2 * x)))).astype(float)
    return x, y


def test_the_spread_narrows_as_the_calibration_set_grows() -> None:
    variances = []
    for n in (60, 600):
        x, y = synthetic_rows(n, seed=n)
        (sub,) = fit_stack(x, np.full(n, np.nan), y, replicates=100).values()
        variances.append(sub.covariance[1][1])
        assert sub.covariance[2] == [0.0, 0.0, 0.0]  # no synthetic weight in the face pattern
    assert variances[1] < variances[0] / 4  # about 1 / n: ten times the rows, a tenth of the variance


def test_the_spread_is_reproducible_and_off_on_request() -> None:
    x, y = synthetic_rows(80, seed=1)
    first = fit_stack(x, np.full(80, np.nan), y, replicates=50)["face"].covariance
    assert fit_stack(x, np.full(80, np.nan), y, replicates=50)["face"].covariance == first
    assert fit_stack(x, np.full(80, np.nan), y, replicates=0)["face"].covariance == []


def test_the_section_balance_a_prior_is_shifted_to_is_redrawn_too() -> None:
    """A face pattern of mostly fakes with a face logit that says nothing: its intercept is the
    section's balance (prior shift), which another draw of the section would set elsewhere."""
    rng = np.random.default_rng(2)
    face = np.concatenate([np.zeros(40), np.full(120, np.nan)])
    synthetic = np.concatenate([np.full(40, np.nan), rng.normal(0.0, 1.0, 120)])
    labels = np.concatenate([np.r_[np.ones(28), np.zeros(12)], (rng.random(120) < 0.2).astype(float)])
    sub = fit_stack(face, synthetic, labels, joint=False, replicates=100)["face"]
    assert sub.face == 0.0
    assert sub.intercept == pytest.approx(math.log(labels.mean() / (1 - labels.mean())), abs=1e-6)
    assert sub.covariance[0][0] > 0.01  # a fixed section balance would leave it at 0


def test_no_spread_when_no_draw_can_be_fitted() -> None:
    never = parameter_covariance(
        lambda rows: None, ("face",), np.arange(20), np.r_[np.zeros(10), np.ones(10)]
    )
    one_class = parameter_covariance(lambda rows: (0.0, [1.0]), ("face",), np.arange(20), np.zeros(20))
    assert never == one_class == []


def test_grouped_copies_are_redrawn_together() -> None:
    """Two copies of every clip are no more evidence than one: drawn by group, the spread is the
    one-copy spread; drawn row by row it would claim about half the variance."""
    x, y = synthetic_rows(60, seed=5)
    twice_x, twice_y = np.concatenate([x, x]), np.concatenate([y, y])
    clips = np.concatenate([np.arange(60), np.arange(60)]).astype(str)

    def refit(rows: np.ndarray) -> tuple[float, list[float]]:
        (sub,) = fit_stack(twice_x[rows], np.full(len(rows), np.nan), twice_y[rows], replicates=0).values()
        return sub.intercept, [sub.face]

    by_clip = parameter_covariance(refit, ("face",), clips, twice_y, replicates=100)[1][1]
    by_row = parameter_covariance(refit, ("face",), np.arange(120).astype(str), twice_y, replicates=100)[1][1]
    assert by_row < 0.75 * by_clip


def test_the_range_brackets_the_probability_and_follows_the_logit_error() -> None:
    fusion = with_spread(face=SubModel(intercept=0.1, face=1.0, n=100, covariance=COV))
    score = fusion.fuse(FusionInputs(face_logit=2.0))
    assert score.manipulated is not None
    assert score.manipulated_range is not None
    low, high = score.manipulated_range
    assert low < score.manipulated < high
    error = math.sqrt(0.04 + 4 * 0.09)  # x = (1, 2): intercept and weight variances
    assert logit(high) - logit(score.manipulated) == pytest.approx(Z95 * error)
    assert logit(score.manipulated) - logit(low) == pytest.approx(Z95 * error)
    stronger = fusion.fuse(FusionInputs(face_logit=6.0)).manipulated_range
    assert stronger is not None
    assert logit(stronger[1]) - logit(stronger[0]) > logit(high) - logit(low)  # further out, less known


def test_the_summary_carries_the_authenticity_range() -> None:
    fusion = with_spread(face=SubModel(intercept=0.1, face=1.0, n=100, covariance=COV))
    score = fusion.fuse(FusionInputs(face_logit=-4.0))
    assert score.manipulated_range is not None
    low, high = score.manipulated_range
    words = range_words((1 - high, 1 - low))
    assert score.summary.endswith(
        f"likely authentic by the calibrated detectors ({words} given the calibration's uncertainty)."
    )
    bare = Fusion(make_params(), face_model=FACE, synthetic_model=SYNTH).fuse(FusionInputs(face_logit=-4.0))
    assert bare.summary.endswith("likely authentic by the calibrated detectors.")


def test_stated_priors_move_the_range_with_the_score() -> None:
    fusion = with_spread(face=SubModel(intercept=0.1, face=1.0, n=100, covariance=COV))
    hint = ProvenanceReport.model_validate(
        {
            "state": "absent",
            "state_description": "test",
            "metadata_hints": [
                {
                    "name": "png_sd_parameters",
                    "value": "Steps: 20",
                    "strength": "strong",
                    "source": "png_text",
                    "indicates": "generative_ai",
                }
            ],
        }
    )
    plain = fusion.fuse(FusionInputs(face_logit=-1.0))
    hinted = fusion.fuse(FusionInputs(face_logit=-1.0, provenance=hint))
    assert plain.manipulated_range is not None
    assert hinted.manipulated_range is not None
    prior = fusion.params.priors.metadata_ai
    for a, b in zip(plain.manipulated_range, hinted.manipulated_range, strict=True):
        assert logit(b) - logit(a) == pytest.approx(prior)


def test_no_range_without_a_spread_or_a_fused_verdict() -> None:
    bare = Fusion(make_params(), face_model=FACE, synthetic_model=SYNTH)
    assert bare.fuse(FusionInputs(face_logit=1.0)).manipulated_range is None
    fusion = with_spread(face=SubModel(intercept=0.1, face=1.0, n=100, covariance=COV))
    assert fusion.fuse(FusionInputs()).manipulated_range is None  # out of scope: no probability
    signed = ProvenanceReport.model_validate(
        {
            "state": "trusted",
            "state_description": "test",
            "ai_declaration": {"value": "generated"},
        }
    )
    declared = fusion.fuse(FusionInputs(face_logit=1.0, provenance=signed))
    assert declared.verdict == "ai_generated"
    assert declared.manipulated_range is None  # a signed declaration, not the fit, decided


def test_either_or_fusion_takes_each_end_from_both_detectors() -> None:
    params = make_params()
    submodels = {
        "face": SubModel(intercept=0.1, face=1.0, n=100, covariance=COV),
        "synthetic": SubModel(intercept=-0.3, synthetic=1.1, n=100, covariance=COV),
    }
    fusion = Fusion(
        params.model_copy(update={"submodels": submodels}), face_model=FACE, synthetic_model=SYNTH
    )
    score = fusion.fuse(FusionInputs(face_logit=0.5, synthetic_logit=-0.5))
    assert score.manipulated is not None
    assert score.manipulated_range is not None
    low, high = score.manipulated_range
    assert low < score.manipulated < high
    for fixed in ("face", "synthetic"):  # without either detector's spread the range is narrower
        certain = submodels[fixed].model_copy(update={"covariance": [[0.0] * 3 for _ in range(3)]})
        one = Fusion(
            params.model_copy(update={"submodels": {**submodels, fixed: certain}}),
            face_model=FACE,
            synthetic_model=SYNTH,
        ).fuse(FusionInputs(face_logit=0.5, synthetic_logit=-0.5))
        assert one.manipulated_range is not None
        assert low < one.manipulated_range[0] < one.manipulated_range[1] < high


@pytest.mark.parametrize(
    "covariance",
    [
        [[0.1, 0.0], [0.0, 0.1]],
        [[-0.1, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]],
        [[0.1, 0.5, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]],
    ],
)
def test_a_malformed_covariance_is_refused(covariance: list[list[float]]) -> None:
    with pytest.raises(ValidationError):
        SubModel(intercept=0.0, face=1.0, covariance=covariance)


def test_every_shipped_sub_model_carries_its_spread() -> None:
    """Without it a report would silently lose its range: ``trueframe calibrate`` writes it."""
    params = load_parameters()
    sections = [params.submodels, *(k.submodels for k in params.kinds.values())]
    for submodels in sections:
        for name, sub in submodels.items():
            assert len(sub.covariance) == 3, name
            weights = {"face": sub.face, "synthetic": sub.synthetic}
            for i, signal in enumerate(("face", "synthetic"), start=1):
                if name == "face_synthetic" or name == signal:
                    assert sub.covariance[i][i] > 0.0 or weights[signal] == 0.0, (name, signal)
            assert sub.covariance[0][0] > 1e-4, name  # no pattern's prior is known exactly
