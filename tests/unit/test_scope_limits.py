"""Limits of scope read from the frames and the faces (:mod:`detector.scoring.scope`): greyscale media,
videos with no face found, and videos checked on fewer frames than the video fusion was calibrated on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from detector.errors import InvalidRequest, ModelError
from detector.scoring.fusion.fit import dump_parameters
from detector.scoring.fusion.rules import load_parameters
from detector.scoring.scope import GREY_CHROMA, Scope, few_frames, greyscale
from tests.support import mediagen
from tests.support.fusion_params import make_params
from tests.support.scope import encoded, scope_of

GREY = "greyscale (no colour"
NO_FACE = "no face found"

# the colour photo of ../shared/data with the most nearly grey pixels (91.0% within GREY_CHROMA)
NEARLY_GREY = "dev/synthetic/real/polyu__Canon5D2_5_160_3200_chair_11_real.JPG"


def test_a_grey_copy_of_the_most_nearly_grey_colour_photo_is_greyscale_and_the_photo_is_not(
    shared_data: Path,
) -> None:
    with Image.open(shared_data / NEARLY_GREY) as im:
        photo = im.convert("RGB")
    photo.thumbnail((640, 640))
    grey = photo.convert("L")
    colour = scope_of(encoded(photo, "JPEG", quality=90), [200.0])
    assert not any(r.startswith(GREY) for r in colour.limited), colour.limited
    # a grey picture in a colour JPEG carries chroma noise; as a one-channel PNG it has none
    for data in (encoded(grey.convert("RGB"), "JPEG", quality=75), encoded(grey, "PNG")):
        scope = scope_of(data, [200.0])
        assert [r for r in scope.limited if r.startswith(GREY)] == [
            "greyscale (no colour; nearly all media the detectors were validated on are in colour)"
        ]
        assert scope.degraded == []  # one step, not the degraded rule


def test_the_grey_test_counts_pixels_within_the_chroma_bound() -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 200, (200, 200, 1), dtype=np.uint8).repeat(3, axis=2)
    assert greyscale(base)
    tinted = base.copy()
    tinted[..., 0] += GREY_CHROMA  # every pixel exactly at the bound: still grey
    assert greyscale(tinted)
    tinted[:10, :, 0] += 1  # 5% of rows just over it: colour
    assert not greyscale(tinted)


def test_a_video_is_greyscale_only_when_every_sampled_frame_is(tmp_path: Path) -> None:
    frames = [mediagen.face_frame(i, 12, (160, 120)) for i in range(12)]
    greys = [np.repeat(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2) for f in frames]
    all_grey = mediagen.write_clip(tmp_path / "grey.mp4", greys).read_bytes()
    assert any(r.startswith(GREY) for r in scope_of(all_grey, [60.0]).limited)
    one_colour = mediagen.write_clip(tmp_path / "mixed.mp4", [*greys[:11], frames[11]]).read_bytes()
    assert not any(r.startswith(GREY) for r in scope_of(one_colour, [60.0]).limited)


def test_a_video_with_no_face_found_is_limited_and_an_image_is_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(6)]
    clip = mediagen.write_clip(tmp_path / "noise.mp4", frames).read_bytes()
    assert [r for r in scope_of(clip).limited if r.startswith(NO_FACE)] == [
        "no face found (the video score was fitted on videos of faces only)"
    ]
    assert not any(r.startswith(NO_FACE) for r in scope_of(clip, [60.0]).limited)
    still = encoded(Image.fromarray(frames[0]), "PNG")
    assert not any(r.startswith(NO_FACE) for r in scope_of(still).limited)


def test_fewer_frames_than_calibrated_limit_a_video_only() -> None:
    scope = Scope(limited=["faces too small to judge (largest 30 px; the face model needs 49)"])
    limited = few_frames(scope, "video", 1, 32)
    assert limited.limited == [*scope.limited, "only 1 frame checked (the video score was calibrated on 32)"]
    assert few_frames(Scope(), "video", 8, 32).limited == [
        "only 8 frames checked (the video score was calibrated on 32)"
    ]
    assert few_frames(Scope(), "video", 8, 32).degraded == []
    assert few_frames(scope, "video", 32, 32) is scope
    assert few_frames(scope, "image", 1, 32) is scope
    assert few_frames(scope, "video", 1, None) is scope  # a fusion file that does not record it


def test_the_frames_per_calibration_video_round_trip_and_the_shipped_file_records_the_default(
    tmp_path: Path,
) -> None:
    from detector.evaluation.calibrate import calibrate, stamped
    from detector.evaluation.runner import SuiteConfig
    from detector.settings import SamplingSettings, Settings

    params = stamped(make_params(), Settings(sampling=SamplingSettings(frames=12)))
    assert params.video_frames == 12
    path = tmp_path / "fusion.toml"
    path.write_text(dump_parameters(params))
    assert load_parameters(path).video_frames == 12
    path.write_text(dump_parameters(params).replace("video_frames = 12", "video_frames = 0"))
    with pytest.raises(ModelError, match="video_frames"):
        load_parameters(path)
    assert load_parameters().video_frames == Settings().sampling.frames
    keyframes = Settings(sampling=SamplingSettings(mode="keyframes"))  # refused before any scoring
    config = SuiteConfig(tmp_path / "no-dev", None, tmp_path / "out", tmp_path / "cache")
    with pytest.raises(InvalidRequest, match="calibration samples frames exactly"):
        calibrate(keyframes, config, tmp_path / "manifest.toml", path, dry_run=True)


def test_a_picture_narrow_in_one_direction_only_is_not_called_tiny() -> None:
    """A 600x100 banner was "a tiny picture (600x100 px)"; a 100x100 thumbnail still is one."""
    rng = np.random.default_rng(5)
    banner = scope_of(encoded(Image.fromarray(rng.integers(0, 256, (100, 600, 3), dtype=np.uint8)), "PNG"))
    assert banner.degraded == ["a picture under 128 px on its short side (600x100 px)"]
    thumb = scope_of(encoded(Image.fromarray(rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)), "PNG"))
    assert thumb.degraded == ["a tiny picture (100x100 px)"]


def test_an_item_out_of_scope_is_not_said_to_be_limited_by_the_limits_of_a_score(tmp_path: Path) -> None:
    """Review finding: a blank grey clip read "Out of scope: ... Limited scope: greyscale ...; no face
    found ...; only 4 frames checked ...", limits of a score it is not given."""
    blank = [np.full((120, 160, 3), 128, np.uint8) for _ in range(6)]
    scope = scope_of(mediagen.write_clip(tmp_path / "blank.mp4", blank).read_bytes())
    assert scope.out_of_scope == ["blank (no detail to judge)"]
    assert not any(r.startswith((GREY, NO_FACE)) for r in scope.limited), scope.limited
    assert few_frames(scope, "video", 4, 32) is scope
