"""Fusion through the real pipeline: a medium without face or manifest, the shipped models and fusion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detector.report.schema import SCHEMA_VERSION
from detector.scoring.fusion.fit import dump_parameters
from detector.scoring.fusion.rules import FusionParameters, load_parameters
from tests.support import mediagen
from tests.support.fusion_params import make_params


@pytest.fixture(scope="module")
def params() -> FusionParameters:
    return make_params()


# --- end to end: the report of an item with no face and no manifest -------------------------------


def test_report_without_face_or_manifest_is_out_of_scope(tmp_path: Path, params: FusionParameters) -> None:
    from detector.pipeline import Pipeline
    from detector.settings import FusionSettings, ModelSettings, Settings

    fusion_file = tmp_path / "fusion.toml"
    fusion_file.write_text(dump_parameters(params.model_copy(update={"face_model": "meso4.df"})))
    settings = Settings(
        models=ModelSettings(face_model="meso4.df", synthetic_model=None, weights_dir=tmp_path / "weights"),
        fusion=FusionSettings(fusion_file=fusion_file),
    )
    rng = np.random.default_rng(5)
    sky = np.linspace(90, 200, 240)[:, None, None] + rng.normal(0, 6, (240, 320, 3))
    path = mediagen.write_image(tmp_path / "landscape.png", np.clip(sky, 0, 255).astype(np.uint8), "png")
    report = Pipeline(settings).analyze(path)
    assert report.schema_version == SCHEMA_VERSION
    assert report.provenance is not None
    assert report.provenance.state == "absent"
    assert report.score.verdict in ("out_of_scope", "uncertain")
    assert report.score.authenticity is None
    assert report.score.calibrated
    assert "no face" in report.score.summary.lower()
    assert report.frames
    assert report.frames[0].synthetic_logit is None


def test_shipped_models_and_fusion_end_to_end(tmp_path: Path) -> None:
    """The default models with the shipped weights/fusion.toml: calibrated, both pixel signals used."""
    from detector.pipeline import Pipeline
    from detector.settings import Settings

    settings = Settings()
    params = load_parameters()
    assert (params.face_model, params.synthetic_model) == (
        settings.models.face_model,
        settings.models.synthetic_model,
    )
    pipeline = Pipeline(settings)
    rng = np.random.default_rng(6)
    sky = np.linspace(90, 200, 240)[:, None, None] + rng.normal(0, 6, (240, 320, 3))
    no_face = mediagen.write_image(tmp_path / "sky.png", np.clip(sky, 0, 255).astype(np.uint8), "png")
    report = pipeline.analyze(no_face)
    signals = {s.name: s for s in report.score.signals}
    assert not signals["face_model"].present
    assert signals["face_model"].contribution is None
    assert signals["synthetic_model"].present
    assert report.score.calibrated
    assert report.score.verdict != "out_of_scope"
    assert report.frames[0].synthetic_score is not None
    face = mediagen.write_image(tmp_path / "face.jpg", mediagen.face_photo(), "jpeg")
    report = pipeline.analyze(face)
    signals = {s.name: s for s in report.score.signals}
    assert signals["face_model"].present
    assert signals["synthetic_model"].present
    total = sum(s.contribution for s in report.score.signals if s.contribution is not None)
    assert report.score.logit == pytest.approx(total)
    assert {m.name for m in report.models} == {settings.models.face_model, settings.models.synthetic_model}


def test_degraded_media_are_held_back_end_to_end(tmp_path: Path) -> None:
    """A thumbnail, a JPEG at quality 10, a WebP, an AVIF and a HEIC at quality 20 of a real photo,
    through the shipped defaults: the reasons reach the report and no accusing verdict comes from
    their pixels."""
    from PIL import Image

    from detector.media.loader import save_image
    from detector.pipeline import Pipeline
    from detector.settings import Settings

    pipeline = Pipeline(Settings())
    photo = mediagen.face_photo()
    thumb = np.asarray(Image.fromarray(photo).resize((100, 100), Image.BICUBIC))
    cases = {
        "a tiny picture": mediagen.write_image(tmp_path / "thumb.jpg", thumb, "jpeg"),
        "heavy JPEG compression": tmp_path / "q10.jpg",
    }
    Image.fromarray(photo).save(cases["heavy JPEG compression"], quality=10)
    cases["heavy WebP compression"] = tmp_path / "q20.webp"
    Image.fromarray(photo).save(cases["heavy WebP compression"], quality=20)
    cases["heavy AVIF compression"] = tmp_path / "q20.avif"
    Image.fromarray(photo).save(cases["heavy AVIF compression"], quality=20)
    cases["heavy HEIC compression"] = tmp_path / "q20.heic"
    save_image(Image.fromarray(photo), cases["heavy HEIC compression"], "HEIF", 20)
    rules = []
    for reason, path in cases.items():
        report = pipeline.analyze(path)
        rules.append(report.score.rule)
        score = report.score
        assert any(r.startswith(reason) for r in score.limited), score.limited
        assert score.verdict not in ("manipulated", "likely_manipulated", "ai_generated")
        assert score.manipulated is not None
        if score.rule == "degraded_media":
            assert reason in score.summary
        read = {
            "heavy WebP compression": report.media.webp_quality,
            "heavy AVIF compression": report.media.avif_quality,
            "heavy HEIC compression": report.media.heic_quality,
        }
        if reason in read:
            assert read[reason] == pytest.approx(20, abs=3)
    assert "degraded_media" in rules, rules  # the summary check above ran at least once


PADDED_REAL_PHOTOS = (
    "faces/celeba_wild_via_deepfacelive/000002.jpg",
    "faces/celeba_wild_via_deepfacelive/000010.jpg",
    "faces/deepface/tests/unit/dataset/img12.jpg",
    "faces/deepface/tests/unit/dataset/img24.jpg",
    "dev/synthetic/real/imagenet__n03944341_pinwheel.JPEG",
)
"""Real photos the synthetic-image model rates 0.6-0.8 on their own, the hardest reals to pad."""
ACCUSING = {"likely_manipulated": 1, "manipulated": 2, "ai_generated": 2}


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_photos_padded_with_flat_bars_are_judged_as_the_photos_and_not_accused(
    tmp_path: Path, shared_data: Path
) -> None:
    """A padded square post or a photo on a plain page is an inset picture to the scope, and the
    synthetic-image model judges the picture cut out of its canvas, which reads like the photo (the
    bars in its views pulled the logit towards 0, by 2.1 on average here). A fusion section fitted
    on screenshots, tried instead of the cut, put 6 of these 10 copies in `likely_manipulated` (P
    0.94-1.00); now no copy is accused more than its photo is, and the step holds it one band lower
    (of the photos, one is `likely_manipulated` as it is and one `ai_generated`)."""
    from PIL import Image

    from detector.models import create_model
    from detector.models._manifest import load_manifest
    from detector.pipeline import Pipeline
    from detector.scoring.scope import check_frame, inset_picture
    from detector.settings import Settings

    pipeline = Pipeline(Settings())
    name = Settings().models.synthetic_model or ""
    model = create_model(name)
    calibration = load_manifest().models[name].calibration
    assert calibration is not None
    platt = calibration.parameters
    cut_gaps, whole_gaps = [], []
    for i, photo_name in enumerate(PADDED_REAL_PHOTOS):
        with Image.open(shared_data / photo_name) as im:
            photo = im.convert("RGB")
        own = float(model.predict([np.asarray(photo)])[0])
        own_rank = ACCUSING.get(pipeline.analyze(shared_data / photo_name).score.verdict, 0)
        side = int(max(photo.size) * 1.25)
        for colour in ((255, 255, 255), (0, 0, 0)):
            canvas = Image.new("RGB", (side, side), colour)
            canvas.paste(photo, ((side - photo.width) // 2, (side - photo.height) // 2))
            path = tmp_path / f"padded-{i}-{colour[0]}.jpg"
            canvas.save(path, quality=92)
            with Image.open(path) as saved:
                pixels = np.asarray(saved.convert("RGB"))
            cut = inset_picture(pixels, check_frame(pixels, inset=True))
            assert cut.shape[0] < pixels.shape[0]
            assert cut.shape[1] < pixels.shape[1]
            whole, judged = (float(v) for v in model.predict([pixels, cut]))
            report = pipeline.analyze(path)
            # the cut was judged (the report's frame logit is the calibrated one)
            calibrated = platt["a"] * judged + platt["b"]
            assert report.frames[0].synthetic_logit == pytest.approx(calibrated, abs=1e-4)
            rank = ACCUSING.get(report.score.verdict, 0)
            assert rank < 2, photo_name  # never the top band: the step
            assert rank <= own_rank, photo_name  # never more accused than the photo itself
            cut_gaps.append(abs(judged - own))
            whole_gaps.append(abs(whole - own))
    assert np.mean(cut_gaps) < 0.6 < 2.0 < np.mean(whole_gaps)


@pytest.mark.shared_data
def test_the_scan_judges_an_inset_picture_cut_out_as_the_pipeline_does(
    tmp_path: Path, shared_data: Path
) -> None:
    """The scan's classifier step has its own call of the synthetic-image model: it too must judge a
    screenshot's picture cut out of the canvas, or a scan and an upload of one file would disagree."""
    from PIL import Image

    from detector.evaluation.dev_set import SCREENSHOT_SHOWN, screenshot
    from detector.faces.extract import FaceResult
    from detector.pipeline import Pipeline
    from detector.settings import Settings
    from serving.scan.steps import ClassifierStep, ItemState, LoadStep

    with Image.open(shared_data / "synthetic/real/kodak24/kodim05.png") as im:
        photo = np.asarray(im.convert("RGB"))
    side = min(photo.shape[:2])
    square = Image.fromarray(photo[:side, :side]).resize((SCREENSHOT_SHOWN,) * 2, Image.Resampling.BOX)
    shot = mediagen.write_image(tmp_path / "shot.png", screenshot(np.asarray(square), dark=True), "png")
    settings = Settings()
    state = ItemState(path=str(shot))
    LoadStep(settings).process([state])
    state.faces = FaceResult(per_frame=[[]], tracks=[])
    ClassifierStep(settings).process([state])
    assert state.error is None
    pipeline = Pipeline(settings)
    report = pipeline.analyze(shot)
    assert any(r.endswith("judged the picture cut out of it)") for r in report.score.limited)
    (raw,) = state.synthetic_logits.values()
    # the report's frame logit is the calibrated one
    calibrated = pipeline.assembler.synthetic_calibrator.logit_of(raw)
    assert report.frames[0].synthetic_logit == pytest.approx(calibrated, abs=1e-4)


def test_a_face_swap_still_is_not_called_authentic_by_the_shipped_defaults(shared_data: Path) -> None:
    """The MesoNet authors' Deepfakes face-swap still: the shipped image section gives the face
    model no weight, so the pixels cannot vouch for the face (rule face_unweighed), and the face
    model's rating is shown at even odds and said not to count."""
    from detector.pipeline import Pipeline

    report = Pipeline().analyze(shared_data / "deepfake" / "frames" / "df" / "df00204.jpg")
    score = report.score
    assert score.verdict == "likely_authentic"
    assert score.rule == "face_unweighed"
    assert "face swaps" in score.summary
    face = next(s for s in score.signals if s.name == "face_model")
    assert face.present
    assert face.contribution == 0.0
    assert "not counted" in face.sentence
    assert "at even odds" in face.sentence
    assert face.probability is not None


def test_a_video_checked_on_fewer_frames_than_calibrated_and_a_grey_photo_are_limited(tmp_path: Path) -> None:
    """The shipped defaults: the frames the video fusion was calibrated on (32, recorded in
    fusion.toml) against ``frames=4``, and a greyscale photo, both named in ``score.limited`` and in
    the summary; the full count and the colour photo are not."""
    from detector.pipeline import Pipeline
    from detector.settings import Settings

    pipeline = Pipeline(Settings())
    clip = mediagen.write_face_clip(tmp_path / "face.mp4", n_frames=40)
    few = pipeline.analyze(clip, frames=4).score
    reason = "only 4 frames checked (the video score was calibrated on 32)"
    assert reason in few.limited
    assert reason in few.summary
    assert few.verdict not in ("manipulated", "authentic")  # one step closer to uncertain at least
    assert few.rule == "limited_scope" or few.verdict == "uncertain", (few.verdict, few.rule)
    assert not any(r.startswith("only ") for r in pipeline.analyze(clip).score.limited)
    photo = mediagen.face_photo()
    grey = np.repeat(photo.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    grey_score = pipeline.analyze(mediagen.write_image(tmp_path / "grey.jpg", grey, "jpeg")).score
    assert any(r.startswith("greyscale") for r in grey_score.limited)
    assert "greyscale" in grey_score.summary
    colour = pipeline.analyze(mediagen.write_image(tmp_path / "colour.jpg", photo, "jpeg")).score
    assert not any(r.startswith("greyscale") for r in colour.limited)
