"""Per-model calibration, its manifest round trip, and the aggregation rules."""

from __future__ import annotations

import math
import shutil
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from detector.evaluation.calibrate import write_manifest_calibration
from detector.models._manifest import Calibration, Manifest, load_manifest
from detector.scoring.aggregate import (
    TrackEvidence,
    confident_subset,
    item_logit,
    series_logit,
    synthetic_logit,
    top_subset,
    track_logit,
)
from detector.scoring.calibration import (
    ISOTONIC_MIN_SAMPLES,
    CalibrationDataError,
    Calibrator,
    even_odds_weights,
    expected_calibration_error,
    fit_calibrator,
    sigmoid,
)
from detector.settings import FusionSettings
from tests.support.paths import ROOT


def miscaled(n: int, seed: int, scale: float = 3.0, shift: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from sigmoid(z) (so z is perfectly calibrated), scores = scale * z + shift."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, n)
    labels = (rng.random(n) < sigmoid(z)).astype(np.float64)
    return scale * z + shift, labels


@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_calibration_lowers_ece_on_held_out_miscaled_scores(method: str) -> None:
    scores, labels = miscaled(4000, seed=1)
    held_scores, held_labels = miscaled(4000, seed=2)
    cal = fit_calibrator(scores, labels, method)  # type: ignore[arg-type]
    before = expected_calibration_error(sigmoid(held_scores), held_labels)
    after = expected_calibration_error(cal.probabilities(held_scores), held_labels)
    assert before > 0.08
    assert after < before / 2
    if method == "platt":  # the affine family contains the truth
        assert after < 0.03
        assert cal.parameters["a"] == pytest.approx(1 / 3, rel=0.1)


def test_temperature_recovers_the_scale_and_keeps_the_ranking() -> None:
    scores, labels = miscaled(6000, seed=3, scale=2.5, shift=0.0)
    cal = fit_calibrator(scores, labels, "temperature")
    assert cal.parameters["temperature"] == pytest.approx(2.5, rel=0.1)
    out = cal.logits(np.array([-3.0, 0.0, 1.0, 4.0]))
    assert np.all(np.diff(out) > 0)
    assert out[1] == 0.0
    assert cal.n == 6000
    assert cal.ece_after is not None
    assert cal.ece_before is not None
    assert cal.ece_after < cal.ece_before


def test_isotonic_needs_enough_samples() -> None:
    scores, labels = miscaled(ISOTONIC_MIN_SAMPLES - 1, seed=4)
    with pytest.raises(CalibrationDataError) as info:
        fit_calibrator(scores, labels, "isotonic")
    assert info.value.code == "calibration_data_insufficient"
    scores, labels = miscaled(3000, seed=5)
    cal = fit_calibrator(scores, labels, "isotonic")
    held_scores, held_labels = miscaled(3000, seed=6)
    assert expected_calibration_error(cal.probabilities(held_scores), held_labels) < 0.05
    assert np.all(np.isfinite(cal.logits(np.array([-1e3, 0.0, 1e3]))))


@pytest.mark.parametrize(
    ("scores", "labels"),
    [([0.1, 0.2], [1.0, 1.0]), ([0.1, 0.2], [0.0, 2.0]), ([0.1], [0.0, 1.0]), ([math.nan, 1.0], [0.0, 1.0])],
)
def test_bad_calibration_sets_are_typed_errors(scores: list[float], labels: list[float]) -> None:
    with pytest.raises(CalibrationDataError):
        fit_calibrator(scores, labels, "platt")


def test_ece_of_a_known_case() -> None:
    # every item says 0.8, half are fake: |0.5 - 0.8| = 0.3 in the one occupied bin
    assert expected_calibration_error([0.8] * 10, [1.0, 0.0] * 5) == pytest.approx(0.3)
    assert expected_calibration_error([0.0, 1.0], [0.0, 1.0]) == pytest.approx(0.0)


@pytest.mark.parametrize("method", ["temperature", "platt", "isotonic"])
def test_calibrator_round_trips_through_the_manifest_table(method: str) -> None:
    scores, labels = miscaled(1200, seed=7)
    cal = fit_calibrator(scores, labels, method, fitted_on="unit test")  # type: ignore[arg-type]
    table = Calibration.model_validate(cal.to_table())
    again = Calibrator.from_manifest(table)
    probe = np.linspace(-8, 8, 33)
    np.testing.assert_allclose(again.logits(probe), cal.logits(probe))
    assert again.fitted_on == "unit test"
    assert again.n == 1200


def test_manifest_calibration_is_written_in_place_and_replaced(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.toml"
    shutil.copy(ROOT / "weights" / "manifest.toml", manifest)
    original = manifest.read_text()
    name = next(iter(load_manifest(manifest).models))
    first = fit_calibrator(*miscaled(500, seed=8), "platt", fitted_on="first")
    write_manifest_calibration(manifest, name, first)
    second = fit_calibrator(*miscaled(500, seed=9), "temperature", fitted_on="second")
    write_manifest_calibration(manifest, name, second)
    text = manifest.read_text()
    assert text.count(f'[models."{name}".calibration]') == 1
    entry = Manifest.model_validate(tomllib.loads(text)).models[name]
    assert entry.calibration is not None
    assert entry.calibration.method == "temperature"
    assert entry.calibration.fitted_on == "second"
    assert entry.calibration.n == 500
    before = {k: v.get("calibration") for k, v in tomllib.loads(original)["models"].items() if k != name}
    after = {k: v.get("calibration") for k, v in tomllib.loads(text)["models"].items() if k != name}
    assert after == before  # other entries are untouched


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_track_mean_is_the_default_and_confident_frames_rule_is_selectable() -> None:
    fake, real = _logit(0.95), _logit(0.3)
    logits = [fake] * 12 + [real] * 8  # 12 confident fakes out of 20: more than 1/2.5 and >= 11
    assert track_logit(logits) == pytest.approx((12 * fake + 8 * real) / 20)
    confident = FusionSettings(track_rule="confident")
    assert track_logit(logits, confident) == pytest.approx(fake)
    # too few confident fakes: all frames count
    assert track_logit([fake] * 3 + [real] * 4, confident) == pytest.approx((3 * fake + 4 * real) / 7)
    # more than 90% confidently real: only those count
    sure_real = [_logit(0.05)] * 19 + [_logit(0.6)]
    assert confident_subset(sure_real, confident) == [_logit(0.05)] * 19
    assert track_logit([], confident) is None


def test_item_weights_tracks_by_length_and_face_size() -> None:
    big = TrackEvidence(logits=[2.0] * 10, mean_side=200.0)
    small = TrackEvidence(logits=[-2.0] * 2, mean_side=50.0)
    expected = (10 * 200 * 2.0 + 2 * 50 * -2.0) / (10 * 200 + 2 * 50)
    assert item_logit([big, small]) == pytest.approx(expected)
    assert item_logit([]) is None
    assert item_logit([TrackEvidence(logits=[], mean_side=80.0)]) is None


def test_synthetic_series_aggregates_per_video() -> None:
    assert synthetic_logit([1.0, 2.0, 3.0]) == pytest.approx(2.0)
    assert synthetic_logit([]) is None
    with pytest.raises(ValueError, match="unknown aggregation rule"):
        series_logit([1.0], rule="max")


def test_top_rule_averages_the_highest_share_of_a_series() -> None:
    logits = [-3.0, 4.0, 0.0, 2.0, -1.0, 3.0, 1.0, -2.0]
    assert series_logit(logits, "top", FusionSettings(top_share=0.25)) == pytest.approx(3.5)  # 4, 3
    assert series_logit(logits, "top", FusionSettings(top_share=0.1)) == pytest.approx(4.0)  # at least one
    assert series_logit(logits, "top", FusionSettings(top_share=0.3)) == pytest.approx(3.0)  # 2.4 -> 3 values
    assert series_logit(logits, "top", FusionSettings(top_share=1.0)) == pytest.approx(0.5)  # the mean
    assert top_subset([1.0, 5.0, 3.0], 0.5) == [5.0, 3.0]
    top = FusionSettings(track_rule="top", synthetic_rule="top", top_share=0.5)
    assert track_logit([0.0, 1.0, 5.0, 3.0], top) == pytest.approx(4.0)
    assert synthetic_logit([0.0, 1.0, 5.0, 3.0], top) == pytest.approx(4.0)
    assert track_logit([0.0, 1.0, 5.0, 3.0]) == pytest.approx(2.25)  # the default stays the mean
    assert track_logit([], top) is None
    for bad in (0.0, 1.5):
        with pytest.raises(ValidationError):
            FusionSettings(top_share=bad)


def test_calibrate_subcommand_registers_its_options() -> None:
    import argparse

    from serving.cli import calibrate as cli_calibrate

    parser = argparse.ArgumentParser(prog="trueframe")
    cli_calibrate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["calibrate", "--variants", "original", "--dry-run", "--limit", "3"])
    assert args.func is cli_calibrate.run_calibrate
    assert (args.variants, args.dry_run, args.limit) == ("original", True, 3)
    assert args.manifest == Path("weights/manifest.toml")


def test_ece_noise_floor_is_what_a_perfect_predictor_scores() -> None:
    from detector.scoring.calibration import ece_noise_floor

    rng = np.random.default_rng(11)
    probs = rng.uniform(0, 1, 300)
    labels = (rng.random(300) < probs).astype(np.float64)  # perfectly calibrated by construction
    floor = ece_noise_floor(probs, draws=300, seed=1)
    assert 0.02 < floor < 0.12  # 300 items in 15 bins: ECE is far from 0 even when perfect
    assert expected_calibration_error(probs, labels) < 2.5 * floor
    assert ece_noise_floor(rng.uniform(0, 1, 30000), draws=20) < 0.02


def test_even_odds_weights_balance_the_classes_and_reject_one_class() -> None:
    w = even_odds_weights([1.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(w, [2 / 3, 2 / 3, 2 / 3, 2.0])
    assert w[:3].sum() == pytest.approx(w[3:].sum())
    with pytest.raises(CalibrationDataError):
        even_odds_weights([1.0, 1.0])


def test_weighted_ece_counts_each_row_by_its_weight() -> None:
    # two occupied bins: four reals at 0.1 (error 0.1), and a fake and a real at 0.9 (frequency 0.5,
    # error 0.4); weights change each bin's mass and its weighted frequency of fakes
    probs = [0.1, 0.1, 0.1, 0.1, 0.9, 0.9]
    labels = [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    plain = expected_calibration_error(probs, labels)
    assert plain == pytest.approx((4 * 0.1 + 2 * 0.4) / 6)
    w = np.array([0.5, 0.5, 0.5, 0.5, 3.0, 1.0])
    # bin 0.9: frequency 3/4, error 0.15, mass 4; bin 0.1: error 0.1, mass 2
    assert expected_calibration_error(probs, labels, weights=w) == pytest.approx((2 * 0.1 + 4 * 0.15) / 6)
    assert expected_calibration_error(probs, labels, weights=np.ones(6)) == pytest.approx(plain)


@pytest.mark.parametrize("method", ["temperature", "platt", "isotonic"])
def test_an_even_odds_calibrator_does_not_learn_the_class_mix(method: str) -> None:
    """Three fakes per real: the plain fit learns that mix as a prior, the even-odds fit does not."""
    rng = np.random.default_rng(21)
    fakes, reals = rng.normal(1.0, 1.0, 3000), rng.normal(-1.0, 1.0, 1000)
    scores = np.concatenate([fakes, reals])
    labels = np.concatenate([np.ones(3000), np.zeros(1000)])
    plain = fit_calibrator(scores, labels, method)  # type: ignore[arg-type]
    even = fit_calibrator(scores, labels, method, even_odds=True)  # type: ignore[arg-type]
    # equal-variance classes at +-1: the evidence at even odds is exactly 2 z, and 0 at z = 0
    probe = np.array([-0.5, 0.0, 0.5])
    if method == "platt":
        np.testing.assert_allclose(even.logits(probe), 2.0 * probe, atol=0.15)
        np.testing.assert_allclose(plain.logits(probe) - even.logits(probe), math.log(3.0), atol=0.15)
    elif method == "isotonic":
        np.testing.assert_allclose(even.logits(probe), 2.0 * probe, atol=0.5)
        assert float(plain.logits(np.array([0.0]))[0]) > 0.6
    else:  # no intercept to move: the temperature minimises the class-balanced log-loss
        balance = even_odds_weights(labels)

        def loss(t: float) -> float:
            return float(np.average(np.logaddexp(0.0, scores / t) - labels * scores / t, weights=balance))

        grid = np.linspace(0.2, 2.0, 1801)
        best = grid[np.argmin([loss(t) for t in grid])]
        assert even.parameters["temperature"] == pytest.approx(best, abs=2e-3)
    if method != "temperature":
        balance = even_odds_weights(labels)
        assert expected_calibration_error(even.probabilities(scores), labels, weights=balance) < 0.03
        assert even.ece_after == pytest.approx(
            expected_calibration_error(even.probabilities(scores), labels, weights=balance)
        )


def test_fit_on_item_features_calibrates_each_model_and_the_fusion() -> None:
    """Per-model Platt, the fusion stack and verdict bands fitted on item-level raw logits."""
    from detector.evaluation.calibrate import Features, fit
    from detector.scoring.fusion.fit import stack_logits
    from detector.scoring.logodds import sigmoid

    face, face_y = miscaled(800, seed=12, scale=3.0, shift=1.0)
    synth, synth_y = miscaled(600, seed=13, scale=0.4, shift=-0.5)
    rng = np.random.default_rng(14)
    features = Features(
        face=np.concatenate([face, np.full(600, np.nan)]),
        synthetic=np.concatenate([rng.normal(0, 1, 800), synth]),
        labels=np.concatenate([face_y, synth_y]),
    )
    face_cal, synth_cal, params = fit(features, "unit test")
    assert face_cal is not None
    assert synth_cal is not None
    assert (face_cal.ece_after or 1.0) < (face_cal.ece_before or 0.0)
    assert (synth_cal.ece_after or 1.0) < (synth_cal.ece_before or 0.0)
    assert set(params.submodels) >= {"face", "synthetic"}
    fused = stack_logits(
        params.submodels,
        np.where(np.isnan(features.face), np.nan, face_cal.logits(np.nan_to_num(features.face))),
        synth_cal.logits(features.synthetic),
    )
    probs = sigmoid(fused)
    reals = probs[features.labels == 0]
    assert np.mean(reals >= params.thresholds.manipulated.manipulated) <= 0.01 + 1e-9
    assert expected_calibration_error(probs, features.labels) < 0.08


def test_calibrate_fits_each_model_at_even_odds_and_the_stack_keeps_the_prior() -> None:
    """A model's probability is its evidence at even odds; the fused score still states the mix."""
    from detector.evaluation.calibrate import Features, fit
    from detector.scoring.fusion.fit import stack_logits

    rng = np.random.default_rng(22)
    face = np.concatenate([rng.normal(1.0, 1.0, 900), rng.normal(-1.0, 1.0, 300)])
    labels = np.concatenate([np.ones(900), np.zeros(300)])
    features = Features(face=face, synthetic=np.full(face.size, np.nan), labels=labels)
    face_cal, _, params = fit(features, "unit test")
    assert face_cal is not None
    assert "even odds" in face_cal.fitted_on
    assert face_cal.logit_of(0.0) == pytest.approx(0.0, abs=0.15)  # the classes' midpoint
    fused = stack_logits(params.submodels, face_cal.logits(face), np.full(face.size, np.nan))
    assert float(np.mean(sigmoid(fused))) == pytest.approx(0.75, abs=0.02)  # 3 fakes per real


def test_each_media_kind_gets_bands_at_the_stated_rates_on_that_kind() -> None:
    """Videos score higher than images on real media: shared bands would accuse many real videos."""
    from detector.evaluation.calibrate import Features, fit
    from detector.scoring.fusion.fit import stack_logits
    from detector.scoring.logodds import sigmoid

    rng = np.random.default_rng(21)
    n_img, n_vid = 900, 300
    y = rng.integers(0, 2, n_img + n_vid).astype(float)
    shift = np.concatenate([np.zeros(n_img), np.full(n_vid, 1.5)])  # real videos look "faker"
    face = (y * 2 - 1) * 1.5 + shift + rng.normal(0, 1, len(y))
    synth = np.concatenate([(y[:n_img] * 2 - 1) * 2 + rng.normal(0, 1, n_img), np.full(n_vid, np.nan)])
    kinds = np.array(["image"] * n_img + ["video"] * n_vid)
    face_cal, synth_cal, params = fit(Features(face, synth, y, kinds), "unit test")
    assert face_cal is not None
    assert synth_cal is not None
    assert set(params.kinds) == {"image", "video"}
    f_cal = face_cal.logits(face)
    s_cal = np.where(np.isnan(synth), np.nan, synth_cal.logits(np.nan_to_num(synth)))
    for kind in ("image", "video"):
        rows = kinds == kind
        section = params.for_kind(kind)
        probs = sigmoid(stack_logits(section.submodels, f_cal[rows], s_cal[rows]))
        reals = probs[y[rows] == 0]
        assert np.mean(reals >= section.thresholds.likely_manipulated.manipulated) <= 0.05 + 1e-9
        assert set(section.submodels) >= {"face", "synthetic"}  # missing patterns come from the shared fit
    videos = kinds == "video"
    shared = sigmoid(stack_logits(params.submodels, f_cal[videos], s_cal[videos]))
    assert np.mean(shared[y[videos] == 0] >= params.thresholds.likely_manipulated.manipulated) > 0.05
    # too few rows of a kind: no section, the shared one applies
    few = Features(face[: n_img + 15], synth[: n_img + 15], y[: n_img + 15], kinds[: n_img + 15])
    assert set(fit(few, "unit test")[2].kinds) == {"image"}


def test_accusing_bands_are_set_by_the_reals_of_unseen_sources() -> None:
    """Reals of a source the models trained on score as very real; a band's false-positive rate
    measured on them would hold for them only. With enough unseen reals the accusing bands keep
    their stated rate on those too (and on all reals); the fake-side bands and the fit do not change."""
    from detector.evaluation.calibrate import Features, fit
    from detector.scoring.fusion.fit import stack_logits
    from detector.scoring.logodds import sigmoid

    rng = np.random.default_rng(8)
    n = 900
    y = rng.integers(0, 2, n).astype(float)
    seen = (y == 0) & (rng.random(n) < 0.6)
    synth = (y * 2 - 1) * 2 + rng.normal(0, 1, n)
    synth[seen] -= 3.0  # other clips of a training source: far on the real side
    synth[(y == 0) & ~seen] += 1.0  # what users send sits closer to the fakes
    face = np.full(n, np.nan)
    kinds = np.array(["image"] * n)
    blind_face, blind_synth, blind = fit(Features(face, synth, y, kinds), "unit test")
    face_cal, synth_cal, params = fit(Features(face, synth, y, kinds, seen), "unit test")
    assert (face_cal, synth_cal) == (blind_face, blind_synth)
    assert params.submodels == blind.submodels
    assert synth_cal is not None
    probs = sigmoid(stack_logits(params.submodels, face, synth_cal.logits(synth)))
    fresh = probs[(y == 0) & ~seen]
    for band in ("manipulated", "likely_manipulated"):
        mine, theirs = getattr(params.thresholds, band), getattr(blind.thresholds, band)
        assert np.mean(fresh >= mine.manipulated) <= mine.target_rate + 1e-9
        assert mine.manipulated >= theirs.manipulated
    assert np.mean(fresh >= blind.thresholds.likely_manipulated.manipulated) > 0.05
    assert params.thresholds.likely_authentic == blind.thresholds.likely_authentic
    # unseen reals that are easier than the seen ones never loosen a band below the rate on all reals
    easy = synth.copy()
    easy[(y == 0) & ~seen] -= 6.0
    easy[seen] += 3.0
    _, _, relaxed = fit(Features(face, easy, y, kinds, seen), "unit test")
    _, _, strict = fit(Features(face, easy, y, kinds), "unit test")
    assert relaxed.thresholds == strict.thresholds
    # too few unseen reals: every real sets the bands, as before
    few = seen | (y == 0) & (np.cumsum((y == 0) & ~seen) > 5)
    assert (
        fit(Features(face, synth, y, kinds, few), "unit test")[2].thresholds
        == fit(Features(face, synth, y, kinds, np.zeros(n, bool)), "unit test")[2].thresholds
    )


def test_degraded_rows_get_their_own_sections_and_leave_the_rest_unchanged() -> None:
    """Compressed real photos look "faker": fitted apart, their probabilities are calibrated on
    them, while the calibrators, shared and per-kind sections are those fitted without them."""
    from detector.evaluation.calibrate import Features, fit
    from detector.scoring.calibration import expected_calibration_error
    from detector.scoring.fusion.fit import stack_logits
    from detector.scoring.logodds import sigmoid

    rng = np.random.default_rng(5)
    n, m = 900, 600
    y = rng.integers(0, 2, n + m).astype(float)
    synth = (y * 2 - 1) * 2 + rng.normal(0, 1, n + m)
    synth[n:] = synth[n:] * 0.4 + 1.5  # degraded copies: squeezed and shifted towards "fake"
    face = np.full(n + m, np.nan)
    kinds = np.array(["image"] * n + ["image_degraded"] * m)
    face_cal, synth_cal, params = fit(Features(face, synth, y, kinds), "unit test")
    base_face, base_synth, base = fit(Features(face[:n], synth[:n], y[:n], kinds[:n]), "unit test")
    assert synth_cal == base_synth
    assert face_cal == base_face
    assert params.submodels == base.submodels
    assert params.thresholds == base.thresholds
    assert params.kinds["image"] == base.kinds["image"]
    assert set(params.kinds) == {"image", "image_degraded"}
    assert synth_cal is not None
    s_cal = synth_cal.logits(synth[n:])
    own = sigmoid(stack_logits(params.for_kind("image_degraded").submodels, face[n:], s_cal))
    shared = sigmoid(stack_logits(params.for_kind("image").submodels, face[n:], s_cal))
    assert expected_calibration_error(own, y[n:]) < 0.05 < expected_calibration_error(shared, y[n:])
    assert params.for_kind("image_degraded").fitted_on.startswith("images the scope calls degraded")


def test_a_kind_pattern_with_few_reals_is_pulled_towards_the_shared_one_with_groups() -> None:
    """Images with a face: 12 reals among 90, their synthetic evidence drawn like the videos'. With
    each row's group the image section's face-and-synthetic pattern is pulled towards the shared
    one (pull recorded in fusion.toml); the video section, with plenty of both classes, is not,
    and neither is the degraded copies' section (scored apart, never accusing)."""
    from detector.evaluation.calibrate import Features, fit
    from detector.scoring.fusion.fit import SCARCE_ROWS_PER_CLASS

    rng = np.random.default_rng(12)
    n_vid, n_img = 300, 90
    z = rng.normal(0, 1.5, (n_vid + n_img, 2))
    bias = np.concatenate([np.zeros(n_vid), np.full(n_img, 2.8)])
    y = (rng.random(n_vid + n_img) < sigmoid(bias + z @ np.array([1.0, 1.0]))).astype(float)
    kinds = np.array(["video"] * n_vid + ["image"] * n_img)
    groups = np.array([f"{k}{i // 2}" for i, k in enumerate(kinds)])
    images = kinds == "image"  # their degraded copies: squeezed evidence, same groups
    z = np.concatenate([z, z[images] * 0.5 + 0.5])
    y, groups = np.concatenate([y, y[images]]), np.concatenate([groups, groups[images]])
    kinds = np.concatenate([kinds, np.full(n_img, "image_degraded")])
    reals = {kind: int((y[kinds == kind] == 0).sum()) for kind in ("image", "video")}
    assert reals["image"] < SCARCE_ROWS_PER_CLASS <= reals["video"]
    plain = fit(Features(z[:, 0], z[:, 1], y, kinds), "unit test")[2]
    pulled = fit(Features(z[:, 0], z[:, 1], y, kinds, groups=groups), "unit test")[2]
    assert plain.kinds["image"].submodels["face_synthetic"].pull == 0.0
    assert pulled.kinds["image"].submodels["face_synthetic"].pull > 0.0
    # the same fits; only the spread differs, its draws taking each group whole (fusion/spread.py)
    assert fitted(pulled.kinds["video"]) == fitted(plain.kinds["video"])
    assert fitted(pulled.kinds["image_degraded"]) == fitted(plain.kinds["image_degraded"])
    assert pulled.kinds["image_degraded"].submodels["face_synthetic"].pull == 0.0
    assert fitted(pulled) == fitted(plain)
    spreads = [p.kinds["video"].submodels["face"].covariance for p in (pulled, plain)]
    assert spreads[0] != spreads[1]


def test_degraded_videos_are_pulled_towards_no_evidence_and_degraded_images_are_not() -> None:
    """``calibrate.NO_EVIDENCE``: the degraded videos' section (35 clips, two copies each, labels
    that barely follow the signals) is fitted with the pull towards zero weights that grouped
    cross-validation chooses, and says so; the degraded images' section (same kind of evidence) is
    fitted freely; without groups nothing is pulled."""
    from detector.evaluation.calibrate import NO_EVIDENCE, Features, fit

    assert NO_EVIDENCE == ("video_degraded",)
    rng = np.random.default_rng(31)
    sizes = {"video": 300, "image": 300, "video_degraded": 70, "image_degraded": 70}
    kinds = np.concatenate([np.full(n, k) for k, n in sizes.items()])
    weak = np.char.endswith(kinds.astype(str), "_degraded")
    z = rng.normal(0, 1.5, (len(kinds), 2))
    truth = np.where(weak[:, None], [0.3, 0.1], [1.0, 1.0])
    y = (rng.random(len(kinds)) < sigmoid((z * truth).sum(axis=1) - 0.5)).astype(float)
    groups = np.array([f"{k}{i // 2}" for i, k in enumerate(kinds)])
    pulled = fit(Features(z[:, 0], z[:, 1], y, kinds, groups=groups), "unit test")[2]
    plain = fit(Features(z[:, 0], z[:, 1], y, kinds), "unit test")[2]
    video, image = pulled.kinds["video_degraded"], pulled.kinds["image_degraded"]
    assert video.submodels["face_synthetic"].pull > 0.0
    assert "pulled towards none" in video.fitted_on
    assert all(sub.pull == 0.0 for sub in image.submodels.values())
    assert "pulled towards none" not in image.fitted_on
    assert all(sub.pull == 0.0 for sub in plain.kinds["video_degraded"].submodels.values())
    free = plain.kinds["video_degraded"].submodels["face_synthetic"]
    held = video.submodels["face_synthetic"]
    assert held.face + held.synthetic < free.face + free.synthetic


def fitted(section: Any) -> tuple[Any, ...]:
    """A section's (or the shared one's) sub-models without their spread, and its bands."""
    bare = {k: s.model_copy(update={"covariance": []}) for k, s in section.submodels.items()}
    return bare, section.thresholds


def test_stack_logits_equal_what_serving_fuses() -> None:
    """Fitting and serving compute one function, fitted or not (no NaN where serving has a score)."""
    from detector.scoring.fusion.fit import stack_logits
    from detector.scoring.fusion.params import SubModel
    from detector.scoring.fusion.rules import combine

    fitted = {"face": SubModel(intercept=-0.5, face=1.2), "synthetic": SubModel(intercept=0.3, synthetic=0.8)}
    rows = [(1.5, float("nan")), (float("nan"), -2.0), (0.7, 2.5), (float("nan"), float("nan"))]
    for submodels in (fitted, {}):
        face = np.array([r[0] for r in rows])
        synth = np.array([r[1] for r in rows])
        fused = stack_logits(submodels, face, synth)  # type: ignore[arg-type]
        for (f, s), z in zip(rows, fused, strict=True):
            served = combine(submodels, None if math.isnan(f) else f, None if math.isnan(s) else s)  # type: ignore[arg-type]
            assert (served is None and math.isnan(z)) or served.logit == pytest.approx(z)
        assert not math.isnan(fused[0])  # unfitted: weight 1, like serving
