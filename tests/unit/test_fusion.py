"""Fusion: monotone in every piece of evidence, the stated provenance rules, missing signals, bands."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from detector.provenance.types import ActiveManifest, AIDeclaration, ProvenanceReport
from detector.scoring.fusion.fit import (
    choose_thresholds,
    dump_parameters,
    fit_stack,
    shift_prior,
    stack_logits,
)
from detector.scoring.fusion.rules import (
    Fusion,
    FusionInputs,
    FusionParameters,
    load_parameters,
)
from detector.scoring.scope import Scope, check_frame
from tests.support import mediagen
from tests.support.c2pa_signing import DIGITAL_CAPTURE
from tests.support.fusion_params import FACE, SYNTH, make_params, manipulated
from tests.support.provenance_fixtures import sd_parameters


@pytest.fixture(scope="module")
def params() -> FusionParameters:
    return make_params()


@pytest.fixture(scope="module")
def fusion(params: FusionParameters) -> Fusion:
    return Fusion(params, face_model=FACE, synthetic_model=SYNTH)


def prov(**fields: object) -> ProvenanceReport:
    base: dict[str, object] = {"state": "absent", "state_description": "test"}
    base.update(fields)
    return ProvenanceReport.model_validate(base)


def capture_manifest() -> ActiveManifest:
    return ActiveManifest.model_validate(
        {"label": "urn:test", "actions": [{"action": "c2pa.created", "digital_source_type": DIGITAL_CAPTURE}]}
    )


GRID = np.linspace(-9, 9, 37)


@pytest.mark.parametrize("synth", [None, -3.0, 0.0, 4.0])
def test_fused_score_is_monotone_in_face_evidence(fusion: Fusion, synth: float | None) -> None:
    ps = [manipulated(fusion.fuse(FusionInputs(face_logit=float(f), synthetic_logit=synth))) for f in GRID]
    assert all(b >= a for a, b in itertools.pairwise(ps))
    assert ps[-1] > ps[0]


@pytest.mark.parametrize("face", [None, -3.0, 0.0, 4.0])
def test_fused_score_is_monotone_in_synthetic_evidence(fusion: Fusion, face: float | None) -> None:
    ps = [manipulated(fusion.fuse(FusionInputs(face_logit=face, synthetic_logit=float(s)))) for s in GRID]
    assert all(b >= a for a, b in itertools.pairwise(ps))
    assert ps[-1] > ps[0]


@pytest.mark.parametrize("face", list(np.linspace(-6, 6, 7)))
def test_fused_score_is_monotone_in_provenance_evidence(fusion: Fusion, face: float) -> None:
    plain = manipulated(fusion.fuse(FusionInputs(face_logit=face, provenance=prov())))
    capture = prov(state="trusted", active_manifest=capture_manifest())
    assert manipulated(fusion.fuse(FusionInputs(face_logit=face, provenance=capture))) < plain
    hint = sd_parameters()
    assert (
        manipulated(fusion.fuse(FusionInputs(face_logit=face, provenance=prov(metadata_hints=[hint]))))
        > plain
    )
    declared = prov(state="valid_untrusted", ai_declaration=AIDeclaration(value="generated"))
    assert manipulated(fusion.fuse(FusionInputs(face_logit=face, provenance=declared))) >= plain


def test_contributions_add_up_to_the_fused_logit(fusion: Fusion) -> None:
    score = fusion.fuse(FusionInputs(face_logit=1.5, synthetic_logit=-0.5, face_basis="1 face track"))
    total = sum(s.contribution for s in score.signals if s.contribution is not None)
    assert score.logit == pytest.approx(total)
    names = {s.name: s for s in score.signals}
    assert names["face_model"].contribution == pytest.approx(0.9 * 1.5)
    assert names["synthetic_model"].contribution == pytest.approx(0.7 * -0.5)
    assert all(s.sentence.endswith(".") for s in score.signals)
    # the basis joins both models' sentences into one: "...log-odds; the synthetic-image model ..."
    assert ".;" not in score.basis
    assert "log-odds; the synthetic-image model" in score.basis
    assert score.basis.endswith("log-odds.")
    assert len(score.thresholds) == 4
    assert score.calibrated


PERCENT_WORDS = [
    (0.0, "under 1%"),
    (0.004, "under 1%"),
    (0.005, "1%"),
    (0.025, "3%"),
    (0.2, "20%"),
    (0.994, "99%"),
    (0.995, "over 99%"),
    (0.9996, "over 99%"),
    (1.0, "over 99%"),
]


@pytest.mark.parametrize(("p", "words"), PERCENT_WORDS)
def test_a_probability_is_never_worded_as_certainty(p: float, words: str) -> None:
    from detector.scoring.fusion.text import percent

    assert percent(p) == words


def test_overwhelming_evidence_still_reads_short_of_certain(fusion: Fusion) -> None:
    score = fusion.fuse(FusionInputs(face_logit=-12.0, synthetic_logit=-12.0))
    assert score.manipulated is not None
    assert score.manipulated < 0.001
    assert "over 99% likely authentic" in score.summary
    assert "100%" not in score.summary + score.basis
    assert "under 1% likely" in score.basis


def test_no_face_and_no_manifest_is_never_authentic_by_default(fusion: Fusion) -> None:
    for inputs in (FusionInputs(), FusionInputs(provenance=prov())):
        score = fusion.fuse(inputs)
        assert score.verdict == "out_of_scope"
        assert score.authenticity is None
        assert score.manipulated is None
        face = next(s for s in score.signals if s.name == "face_model")
        assert not face.present
        assert face.contribution is None
        assert "no face" in face.sentence.lower()


def test_missing_signal_is_not_a_zero(fusion: Fusion) -> None:
    # a missing face selects the synthetic-only sub-model; it is not the face model saying logit 0
    without = fusion.fuse(FusionInputs(synthetic_logit=1.0))
    zero_face = fusion.fuse(FusionInputs(face_logit=0.0, synthetic_logit=1.0))
    assert without.logit == pytest.approx(-0.3 + 1.1 * 1.0)
    assert zero_face.logit == pytest.approx(-0.2 + 0.7 * 1.0)


def test_non_photographic_images_are_out_of_scope(fusion: Fusion) -> None:
    score = fusion.fuse(FusionInputs(face_logit=3.0, synthetic_logit=3.0, photographic=False))
    assert score.verdict == "out_of_scope"
    assert score.manipulated is None
    drawing = np.full((240, 320, 3), 250, np.uint8)
    drawing[60:180, 100:220] = (20, 120, 200)
    assert not check_frame(drawing).photographic
    assert check_frame(mediagen.face_photo()).photographic


@pytest.mark.parametrize("reason", ["an extreme strip (4000x300 px)", "blank (no detail to judge)"])
def test_a_strip_or_a_blank_picture_is_named_as_such_not_as_a_drawing(fusion: Fusion, reason: str) -> None:
    """A 4000x300 photo panorama read "does not look like a camera photograph (drawing, screenshot or
    flat graphic)" in its summary and signals, while ``score.out_of_scope`` said it was a strip."""
    scope = Scope(out_of_scope=[reason])
    inputs = FusionInputs(synthetic_logit=2.0, photographic=False, scope=scope, media_kind="image")
    score = fusion.fuse(inputs)
    assert score.out_of_scope == [reason]
    assert score.summary == f"Out of scope: the image is {reason}, so trueframe gives no authenticity score."
    for signal in (s for s in score.signals if s.kind == "model"):
        assert signal.sentence.startswith(f"The image is {reason}, so the ")
        assert "drawing" not in signal.sentence
    both = Scope(out_of_scope=[reason, "a drawing, screenshot or flat graphic, not a camera image"])
    video = fusion.fuse(FusionInputs(synthetic_logit=2.0, photographic=False, scope=both, media_kind="video"))
    assert f"the video is {reason}; the video does not look like camera footage (drawing" in video.summary


def test_the_sentences_name_what_each_kind_of_media_showed_the_models(fusion: Fusion) -> None:
    """A video's synthetic-image score is over its sampled frames; "the image" would misname it."""
    kinds = (("image", "the image", "photograph"), ("video", "the video's frames", "footage"))
    for kind, target, footage in kinds:
        score = fusion.fuse(FusionInputs(face_logit=1.0, synthetic_logit=2.0, media_kind=kind))
        synth = next(s for s in score.signals if s.name == "synthetic_model")
        assert f"rates {target} " in synth.sentence
        off = fusion.fuse(FusionInputs(synthetic_logit=2.0, photographic=False, media_kind=kind))
        assert footage in off.summary
        assert all(footage in s.sentence for s in off.signals if s.kind == "model")


def test_trusted_capture_does_not_hide_strong_pixel_evidence(fusion: Fusion) -> None:
    capture = prov(state="trusted", active_manifest=capture_manifest())
    pixels_only = fusion.fuse(FusionInputs(face_logit=3.0))
    assert pixels_only.verdict == "manipulated"
    score = fusion.fuse(FusionInputs(face_logit=3.0, provenance=capture))
    assert score.verdict in ("manipulated", "likely_manipulated")
    assert manipulated(score) < manipulated(pixels_only)
    weak = fusion.fuse(FusionInputs(face_logit=0.5, provenance=capture))
    assert manipulated(weak) < 0.5  # strong authentic evidence where the pixels are unsure


def test_band_thresholds_follow_the_stated_rates() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0.0, 1.0], 2000)
    probs = np.concatenate([rng.beta(2, 5, 2000), rng.beta(5, 2, 2000)])
    t = choose_thresholds(probs, labels)
    assert np.mean(probs[labels == 0] >= t.manipulated.manipulated) <= 0.01
    assert np.mean(probs[labels == 0] >= t.likely_manipulated.manipulated) <= 0.05
    assert np.mean(probs[labels == 1] <= t.authentic.manipulated) <= 0.01
    assert np.mean(probs[labels == 1] <= t.likely_authentic.manipulated) <= 0.05
    assert t.likely_authentic.manipulated <= 0.5 <= t.likely_manipulated.manipulated
    assert t.manipulated.measured_rate <= 0.01


def test_bands_need_stated_odds_even_when_the_classes_separate() -> None:
    # perfectly separated calibration scores would let the rates put both bands at P = 0.5
    probs = np.array([0.45] * 50 + [0.55] * 50)
    labels = np.repeat([0.0, 1.0], 50)
    t = choose_thresholds(probs, labels)
    assert t.likely_manipulated.manipulated == pytest.approx(2 / 3)
    assert t.likely_authentic.manipulated == pytest.approx(1 / 3)
    assert t.band(0.45) == t.band(0.55) == "uncertain"
    assert t.manipulated.manipulated == pytest.approx(0.9)  # definite bands need 9:1 odds
    assert t.authentic.manipulated == pytest.approx(0.1)
    assert t.band(0.85) == "likely_manipulated"
    assert t.band(0.15) == "likely_authentic"


def test_fitted_stack_is_monotone_and_round_trips(tmp_path: Path, params: FusionParameters) -> None:
    rng = np.random.default_rng(1)
    n = 600
    labels = rng.integers(0, 2, n).astype(float)
    face = np.where(rng.random(n) < 0.5, labels * 2 - 1 + rng.normal(0, 1, n), np.nan)
    synth = -(labels * 2 - 1) + rng.normal(0, 1, n)  # anti-correlated: the weight must stay >= 0
    subs = fit_stack(face, synth, labels)
    assert all(s.face >= 0 and s.synthetic >= 0 for s in subs.values())
    assert subs["synthetic"].synthetic == pytest.approx(0.0, abs=1e-6)
    assert subs["face_synthetic"].face > 0.5
    logits = stack_logits(subs, face, synth)
    assert np.all(np.isfinite(logits))
    fitted = params.model_copy(update={"submodels": subs, "measured": {"ece_after": 0.02}})
    path = tmp_path / "fusion.toml"
    path.write_text(dump_parameters(fitted, "test header"))
    assert load_parameters(path) == fitted


def test_shift_prior_only_ever_lowers_an_intercept() -> None:
    mostly_fake, balanced = np.array([1.0] * 9 + [0.0]), np.array([1.0, 0.0] * 5)
    assert shift_prior(0.5, mostly_fake, balanced) == pytest.approx(0.5 - np.log(9.0))
    assert shift_prior(0.5, 1 - mostly_fake, balanced) == 0.5  # a mostly-real pattern keeps its own


def test_which_detectors_ran_does_not_set_the_prior() -> None:
    """Face rows 90% fake, the rest 20% fake, evidence alike everywhere and the face score noise:
    fitted per pattern, "a face was found" alone would add log-odds; with the shared prior no pattern
    starts above the prior of all rows."""
    rng = np.random.default_rng(3)
    n = 2000
    has_face = rng.random(n) < 0.5
    labels = (rng.random(n) < np.where(has_face, 0.9, 0.2)).astype(float)
    synth = (labels * 2 - 1) + rng.normal(0, 1.5, n)
    face = np.where(has_face, rng.normal(0, 1, n), np.nan)
    own = fit_stack(face, synth, labels, shared_prior=False)
    shared = fit_stack(face, synth, labels)
    for subs in (own, shared):
        assert subs["face_synthetic"].face < 0.1
    overall = float(np.log(labels.mean() / (1 - labels.mean())))  # evidence is symmetric about 0
    assert own["face_synthetic"].intercept > overall + 1.5  # the face rows' own 9:1
    assert abs(shared["face_synthetic"].intercept - overall) < 0.3
    assert shared["synthetic"].intercept == own["synthetic"].intercept  # fewer fakes than overall: kept


def test_a_kind_section_replaces_the_shared_submodels_and_bands(
    tmp_path: Path, params: FusionParameters
) -> None:
    from detector.scoring.fusion.params import KindParameters, SubModel, Thresholds

    video = KindParameters(
        fitted_on="videos only: unit test",
        submodels={"face": SubModel(intercept=-1.0, face=2.0, n=40)},
        thresholds=Thresholds.model_validate(
            {
                band: {"manipulated": p, "target_rate": 0.05, "measured_rate": 0.0}
                for band, p in zip(
                    ("authentic", "likely_authentic", "likely_manipulated", "manipulated"),
                    (0.02, 0.1, 0.8, 0.95),
                    strict=True,
                )
            }
        ),
    )
    with_video = params.model_copy(update={"kinds": {"video": video}})
    path = tmp_path / "fusion.toml"
    path.write_text(dump_parameters(with_video, "kinds"))
    assert load_parameters(path) == with_video
    fusion = Fusion(with_video, face_model=FACE, synthetic_model=SYNTH)
    image = fusion.fuse(FusionInputs(face_logit=1.0, media_kind="image"))
    clip = fusion.fuse(FusionInputs(face_logit=1.0, media_kind="video"))
    assert image.logit == pytest.approx(0.1 + 1.0)  # the shared face sub-model
    assert clip.logit == pytest.approx(-1.0 + 2.0)  # the video one
    assert image.verdict == "likely_manipulated"  # P 0.75 >= the shared 0.7
    assert clip.verdict == "uncertain"  # P 0.73 < the video band's 0.8
    assert "videos only" in clip.fusion
    assert "videos only" not in image.fusion
    assert [t.manipulated for t in clip.thresholds] == [0.02, 0.1, 0.8, 0.95]
    unknown = fusion.fuse(FusionInputs(face_logit=1.0))
    assert unknown.logit == pytest.approx(image.logit)


def test_degraded_media_are_scored_with_their_own_section(tmp_path: Path, params: FusionParameters) -> None:
    """A degraded image takes ``image_degraded``'s sub-models and bands; a degraded video, with no
    section of its own, falls back to the video one, then to the shared one."""
    from detector.scoring.fusion.params import KindParameters, SubModel

    def section(name: str, intercept: float) -> KindParameters:
        return KindParameters(
            fitted_on=f"{name}: unit test",
            submodels={"face": SubModel(intercept=intercept, face=0.5, n=40)},
            thresholds=params.thresholds,
        )

    kinds = {"image": section("images only", 0.4), "image_degraded": section("degraded images", -2.0)}
    both = params.model_copy(update={"kinds": kinds})
    path = tmp_path / "fusion.toml"
    path.write_text(dump_parameters(both, "degraded"))
    assert load_parameters(path) == both
    fusion = Fusion(both, face_model=FACE, synthetic_model=SYNTH)
    heavy = Scope(degraded=["heavy HEIC compression (quality about 20)"])
    plain = fusion.fuse(FusionInputs(face_logit=2.0, media_kind="image"))
    degraded = fusion.fuse(FusionInputs(face_logit=2.0, media_kind="image", scope=heavy))
    assert plain.logit == pytest.approx(0.4 + 1.0)
    assert degraded.logit == pytest.approx(-2.0 + 1.0)
    assert "degraded images" in degraded.fusion
    assert degraded.rule is None or degraded.rule == "degraded_media"
    video = fusion.fuse(FusionInputs(face_logit=2.0, media_kind="video", scope=heavy))
    assert video.logit == pytest.approx(
        params.submodels["face"].intercept + params.submodels["face"].face * 2.0
    )
    assert both.for_kind("image_degraded").fitted_on.startswith("degraded images")
    assert both.for_kind("video_degraded") == both.for_kind("video") == both.for_kind(None)


def test_parameters_for_other_models_are_flagged_not_silently_used(params: FusionParameters) -> None:
    other = Fusion(params, face_model="meso4.df")
    score = other.fuse(FusionInputs(face_logit=2.0))
    assert not score.calibrated
    assert "meso4.df" in score.basis
    assert score.logit == pytest.approx(2.0)  # calibrated logit, equal weight, no fitted intercept
    # the bands' rates were measured for other models: a step towards uncertain, said in words
    fitted = Fusion(params, face_model=FACE).fuse(FusionInputs(face_logit=-9.0))
    held = other.fuse(FusionInputs(face_logit=-9.0))
    assert (fitted.verdict, fitted.rule) == ("authentic", None)
    assert (held.verdict, held.rule) == ("likely_authentic", "uncalibrated")
    assert "by detectors not calibrated together" in held.summary
    assert "verdict bands' error rates were not measured" in held.summary
    assert "by the calibrated detectors" in fitted.summary
    strong = other.fuse(FusionInputs(face_logit=9.0))
    assert (strong.verdict, strong.rule) == ("likely_manipulated", "uncalibrated")
    # an accusation over trusted credentials comes from the same uncalibrated pixels: stepped too
    capture = prov(state="trusted", active_manifest=capture_manifest())
    for expected_rule, face_model in (
        ("pixel_evidence_over_trusted_capture", FACE),
        ("uncalibrated", "meso4.df"),
    ):
        vouched = Fusion(params, face_model=face_model).fuse(FusionInputs(face_logit=2.5, provenance=capture))
        assert vouched.rule == expected_rule
    assert other.fuse(FusionInputs(face_logit=2.5, provenance=capture)).verdict == "uncertain"


def test_without_a_joint_model_face_and_synthetic_combine_as_noisy_or(params: FusionParameters) -> None:
    subs = {k: v for k, v in params.submodels.items() if k != "face_synthetic"}
    fusion = Fusion(params.model_copy(update={"submodels": subs}), face_model=FACE, synthetic_model=SYNTH)
    p_face = float(1 / (1 + np.exp(-(0.1 + 1.0 * 1.0))))
    p_synth = float(1 / (1 + np.exp(-(-0.3 + 1.1 * -2.0))))
    score = fusion.fuse(FusionInputs(face_logit=1.0, synthetic_logit=-2.0))
    assert manipulated(score) == pytest.approx(1 - (1 - p_face) * (1 - p_synth))
    # a face swap in an otherwise real photo is not pulled down by the synthetic model's "real"
    assert manipulated(score) >= p_face
    for grid_face in (-4.0, 0.0, 4.0):
        ps = [
            manipulated(fusion.fuse(FusionInputs(face_logit=grid_face, synthetic_logit=float(s))))
            for s in GRID
        ]
        assert all(b >= a for a, b in itertools.pairwise(ps))
    extreme = fusion.fuse(FusionInputs(face_logit=-900.0, synthetic_logit=-900.0))
    assert extreme.verdict == "authentic"
    logits = stack_logits(subs, np.array([1.0]), np.array([-2.0]))
    assert logits[0] == pytest.approx(score.logit)


SMALL_FACES = "faces too small to judge (largest 30 px; the face model needs 49)"
HEAVY_JPEG = "heavy JPEG compression (quality about 12)"


def test_small_faces_hold_a_verdict_one_step_back(fusion: Fusion) -> None:
    scope = Scope(limited=[SMALL_FACES])
    strong = fusion.fuse(FusionInputs(face_logit=8.0, synthetic_logit=8.0, scope=scope))
    assert (strong.verdict, strong.rule) == ("likely_manipulated", "limited_scope")
    assert SMALL_FACES in strong.summary
    clean = fusion.fuse(FusionInputs(face_logit=-8.0, synthetic_logit=-8.0, scope=scope))
    assert (clean.verdict, clean.rule) == ("likely_authentic", "limited_scope")
    assert fusion.fuse(FusionInputs(face_logit=8.0, synthetic_logit=8.0)).verdict in (
        "manipulated",
        "ai_generated",
    )


def test_degraded_pixels_never_accuse_but_stated_rules_still_decide(fusion: Fusion) -> None:
    scope = Scope(limited=[HEAVY_JPEG, SMALL_FACES], degraded=[HEAVY_JPEG])
    unheld = {fusion.fuse(FusionInputs(face_logit=v, synthetic_logit=v)).verdict for v in (1.0, 8.0)}
    assert unheld == {"likely_manipulated", "manipulated"}
    for logit in (1.0, 3.0, 8.0):
        score = fusion.fuse(FusionInputs(face_logit=logit, synthetic_logit=logit, scope=scope))
        assert (score.verdict, score.rule) == ("uncertain", "degraded_media")
        assert score.manipulated == pytest.approx(
            fusion.fuse(FusionInputs(face_logit=logit, synthetic_logit=logit)).manipulated
        )
        assert f"Its pixels are degraded ({HEAVY_JPEG})" in score.summary
        assert f"Its pixels are degraded ({HEAVY_JPEG}; {SMALL_FACES}" not in score.summary  # not degraded
        assert f"Limited scope: {SMALL_FACES}." in score.summary  # named as a limit all the same
        assert "cannot make it an accusation" in score.summary
    clean = fusion.fuse(FusionInputs(face_logit=-8.0, synthetic_logit=-8.0, scope=scope))
    assert clean.verdict == "likely_authentic"
    capture = prov(state="trusted", active_manifest=capture_manifest())
    vouched = fusion.fuse(FusionInputs(face_logit=9.0, synthetic_logit=9.0, provenance=capture, scope=scope))
    assert vouched.verdict == "uncertain"  # degraded pixels do not outweigh a trusted capture either
    declared = prov(state="valid_untrusted", ai_declaration=AIDeclaration(value="generated"))
    signed = fusion.fuse(FusionInputs(face_logit=-8.0, provenance=declared, scope=scope))
    assert (signed.verdict, signed.rule) == ("ai_generated", "signed_ai_declaration")


def faceless_images(params: FusionParameters) -> Fusion:
    """``params`` plus an image section that gives the face model weight 0 (as the shipped one does:
    the dev stills hold no face swaps); videos keep the shared section, which weighs the face."""
    from detector.scoring.fusion.params import KindParameters, SubModel

    image = KindParameters(
        fitted_on="images only: unit test",
        submodels={
            "face_synthetic": SubModel(intercept=-2.0, face=0.0, synthetic=1.2, n=100),
            "synthetic": SubModel(intercept=-2.0, synthetic=1.2, n=100),
        },
        thresholds=params.thresholds,
    )
    updated = params.model_copy(update={"kinds": {"image": image}})
    return Fusion(updated, face_model=FACE, synthetic_model=SYNTH)


def test_a_detector_the_section_gives_no_weight_is_said_not_to_count(params: FusionParameters) -> None:
    """Face weight 0 on images (no face manipulation among the calibration stills): the face
    model's rating is reported, and the sentence says it cannot move the score, not "adds 0.00"."""
    fusion = faceless_images(params)
    for kind, counted in (("image", False), ("video", True)):
        score = fusion.fuse(FusionInputs(face_logit=3.0, synthetic_logit=-1.0, media_kind=kind))
        face = next(s for s in score.signals if s.name == "face_model")
        synth = next(s for s in score.signals if s.name == "synthetic_model")
        assert face.probability == pytest.approx(1 / (1 + np.exp(-3.0)))
        assert "at even odds" in face.sentence
        assert ("not counted" in face.sentence) is not counted
        assert ("adds" in face.sentence) is counted
        assert "not counted" not in synth.sentence
        assert face.contribution == pytest.approx(0.0 if not counted else 0.9 * 3.0)
        assert (face.counted, synth.counted) == (counted, True)  # machine-readable, for the form
    missing = fusion.fuse(FusionInputs(synthetic_logit=-1.0, media_kind="image"))
    assert [s.counted for s in missing.signals if s.name == "face_model"] == [False]
    assert all(s.counted is None for s in missing.signals if s.kind != "model")


def test_a_face_the_score_does_not_weigh_keeps_an_image_from_authentic(params: FusionParameters) -> None:
    """Rule 8: face weight 0 on images, a clearly real synthetic score: likely_authentic, not
    authentic; without a face, on a section that weighs the face, or with trusted camera
    credentials, authentic stays possible."""
    fusion = faceless_images(params)
    face_photo = fusion.fuse(FusionInputs(face_logit=-2.0, synthetic_logit=-6.0, media_kind="image"))
    assert manipulated(face_photo) < params.thresholds.authentic.manipulated  # the band says authentic
    assert (face_photo.verdict, face_photo.rule) == ("likely_authentic", "face_unweighed")
    assert "face swaps" in face_photo.summary
    no_face = fusion.fuse(FusionInputs(synthetic_logit=-6.0, media_kind="image"))
    assert (no_face.verdict, no_face.rule) == ("authentic", None)
    weighed = fusion.fuse(FusionInputs(face_logit=-9.0, synthetic_logit=-9.0, media_kind="video"))
    assert (weighed.verdict, weighed.rule) == ("authentic", None)
    camera = capture_manifest()
    vouched = fusion.fuse(
        FusionInputs(
            face_logit=-2.0,
            synthetic_logit=-6.0,
            media_kind="image",
            provenance=prov(state="trusted", active_manifest=camera),
        )
    )
    assert vouched.verdict == "authentic"
    suspicious = fusion.fuse(FusionInputs(face_logit=5.0, synthetic_logit=3.0, media_kind="image"))
    assert suspicious.rule is None  # the rule only ever holds back "authentic"


def test_the_report_schema_names_every_rule_fusion_can_set() -> None:
    import inspect
    import re

    from detector.report.schema import Score
    from detector.scoring.fusion import rules

    produced: set[str] = set()
    for line in inspect.getsource(rules).splitlines():
        if "rule = " not in line:
            continue
        assigned = line.split("rule = ", 1)[1]
        if line.strip().startswith("verdict, rule"):
            assigned = assigned.rsplit(", ", 1)[1]  # the rule is the pair's second item
        produced |= set(re.findall(r'"([a-z_]+)"', assigned))
        if "pixel_evidence_over_{vouching}" in assigned:
            produced |= {"pixel_evidence_over_trusted_capture", "pixel_evidence_over_known_authentic"}
    description = Score.model_fields["rule"].description or ""
    named = set(re.findall(r"[a-z_]{6,}", description.split(":", 1)[1]))
    assert {"degraded_media", "limited_scope", "face_unweighed", "known_match", "uncalibrated"} <= produced
    assert produced == named


@pytest.mark.parametrize("face", [-7.7, 0.0, 9.0])
def test_a_rule_that_decides_leaves_no_fused_logit(fusion: Fusion, face: float) -> None:
    """``score.logit`` is the fused log-odds behind ``manipulated``: a reviewed ``known_match`` set
    ``manipulated`` 0.9 beside the pixels' logit -7.7, while a signed declaration left it null."""
    from datetime import UTC, datetime

    from detector.report.schema import KnownMatch

    known = KnownMatch(verdict="manipulated", reviewed_at=datetime(2026, 12, 1, tzinfo=UTC), distance=0)
    declared = prov(state="valid_untrusted", ai_declaration=AIDeclaration(value="generated"))
    plain = fusion.fuse(FusionInputs(face_logit=face))
    assert plain.logit is not None
    for inputs in (
        FusionInputs(face_logit=face, known_match=known),
        FusionInputs(face_logit=face, provenance=declared),
    ):
        score = fusion.fuse(inputs)
        assert score.rule in ("known_match", "signed_ai_declaration")
        assert score.logit is None, score.rule
        assert score.manipulated is not None
        assert score.manipulated >= plain.manipulated
        assert score.pixel_manipulated == pytest.approx(plain.pixel_manipulated)
    for logit in (-8.0, -1.0, 0.5, 4.0):  # wherever the pixels decide, the logit is behind the probability
        score = fusion.fuse(FusionInputs(face_logit=logit, synthetic_logit=logit))
        assert score.logit is not None
        assert score.manipulated is not None
        assert 1 / (1 + np.exp(-score.logit)) == pytest.approx(score.manipulated)


HEAVY_VIDEO = "heavily compressed video (0.005 bits per pixel)"


def test_the_summary_names_every_limit_even_when_no_rule_moved_the_verdict(fusion: Fusion) -> None:
    """A degraded video whose verdict the rule did not move (already uncertain, or decided by a
    reviewed match) said nothing of ``score.limited`` in its summary (README: "in `score.limited` and
    the summary")."""
    from datetime import UTC, datetime

    from detector.report.schema import KnownMatch

    degraded = Scope(limited=[HEAVY_VIDEO], degraded=[HEAVY_VIDEO])
    small = Scope(limited=[SMALL_FACES])
    middle = next(
        v for v in np.linspace(-3, 3, 61) if fusion.fuse(FusionInputs(face_logit=v)).verdict == "uncertain"
    )
    for scope in (degraded, small):
        score = fusion.fuse(FusionInputs(face_logit=middle, media_kind="video", scope=scope))
        assert (score.verdict, score.rule) == ("uncertain", None)
        assert score.limited == scope.limited
        assert scope.limited[0] in score.summary, score.summary
    uncertain = fusion.fuse(FusionInputs(face_logit=middle, media_kind="video", scope=degraded))
    assert (
        f"Its pixels are degraded ({HEAVY_VIDEO}), so they cannot make it an accusation." in uncertain.summary
    )
    known = KnownMatch(verdict="manipulated", reviewed_at=datetime(2026, 12, 1, tzinfo=UTC), distance=0)
    decided = fusion.fuse(FusionInputs(face_logit=middle, known_match=known, scope=degraded))
    assert decided.rule == "known_match"
    assert decided.summary.endswith(f"Its pixels are degraded ({HEAVY_VIDEO}).")
    held = fusion.fuse(FusionInputs(face_logit=8.0, scope=degraded))
    assert held.rule == "degraded_media"
    assert held.summary.count(HEAVY_VIDEO) == 1, "named once, by the rule"


def test_trueframe_analyze_prints_the_limits_of_scope() -> None:
    """``trueframe analyze``'s text output never printed ``score.limited``."""
    from detector.media.loader import MediaLoader
    from detector.settings import Settings
    from serving.cli.analyze import summarize
    from tests.support.fake_analyzer import fake_report
    from tests.support.hold import small_photo

    info = MediaLoader(Settings().limits).load(small_photo(), "a.jpg").info
    report = fake_report(info, "a.jpg", 1, 0.4, FACE)
    limited = report.model_copy(update={"score": report.score.model_copy(update={"limited": [HEAVY_VIDEO]})})
    assert "limited" not in summarize(report, "a.jpg")
    assert f"  limited: {HEAVY_VIDEO}" in summarize(limited, "a.jpg").splitlines()
