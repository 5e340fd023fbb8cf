"""Error codes are a stable public contract; settings come from TRUEFRAME_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from detector import errors
from detector.scoring.aggregate import TrackEvidence, item_logit, track_logit
from detector.settings import Settings

REQUIRED_CODES = {
    "unsupported_media_type": 415,
    "corrupt_media": 422,
    "media_too_large": 413,
    "too_many_pixels": 413,
    "video_too_long": 413,
    "no_frames_decoded": 422,
    "weights_missing": 503,
    "weights_checksum_mismatch": 503,
    "empty_media": 422,
    "media_too_small": 422,
    "no_video_stream": 422,
    "unknown_model": 400,
}


def test_codes_are_unique_and_statuses_are_client_errors_for_input() -> None:
    classes = errors.all_error_classes()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes)), "every error class needs its own code"
    by_code = {cls.code: cls for cls in classes}
    for code, status in REQUIRED_CODES.items():
        assert by_code[code].http_status == status, code
    for cls in classes:
        if issubclass(cls, errors.MediaError):
            assert 400 <= cls.http_status < 500, cls


def test_error_body_shape() -> None:
    exc = errors.VideoTooLong("video is 700 s long; the limit is 600 s", duration_s=700.0, path=Path("x"))
    assert exc.to_dict() == {
        "code": "video_too_long",
        "message": "video is 700 s long; the limit is 600 s",
        "details": {"duration_s": 700.0},
    }
    assert str(exc).startswith("video_too_long: ")
    assert isinstance(exc, errors.TrueframeError)


def test_settings_defaults_match_the_documented_limits() -> None:
    s = Settings()
    assert s.limits.max_image_bytes == 50_000_000
    assert s.limits.max_video_bytes == 250_000_000
    assert s.limits.max_pixels == 120_000_000
    assert s.limits.max_video_seconds == 600
    assert s.sampling.frames == 32
    assert s.faces.margin == 1.3


def test_settings_from_nested_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUEFRAME_LIMITS__MAX_IMAGE_BYTES", "1234")
    monkeypatch.setenv("TRUEFRAME_SAMPLING__FRAMES", "8")
    monkeypatch.setenv("TRUEFRAME_MODELS__WEIGHTS_DIR", "/tmp/w")
    s = Settings()
    assert s.limits.max_image_bytes == 1234
    assert s.sampling.frames == 8
    assert s.models.weights_dir == Path("/tmp/w")


def test_invalid_settings_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUEFRAME_SAMPLING__FRAMES", "0")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize("argv", [["analyze", "x.jpg"], ["serve", "--no-ray"], ["models"]])
def test_every_command_names_a_refused_setting_in_one_line(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: pydantic's traceback and exit 1."""
    from detector.settings import get_settings
    from serving.cli import main

    monkeypatch.setenv("TRUEFRAME_SAMPLING__FRAMES", "0")
    monkeypatch.setenv("TRUEFRAME_LIMITS__MAX_IMAGE_BYTES", "lots")
    get_settings.cache_clear()
    try:
        assert main(argv) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: settings_invalid: ")
    assert "TRUEFRAME_SAMPLING__FRAMES='0': Input should be greater than or equal to 1" in err
    assert "TRUEFRAME_LIMITS__MAX_IMAGE_BYTES='lots'" in err
    assert "\n" not in err


def test_a_misspelt_setting_or_two_forms_of_one_group_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, a typo in a limit's name was silently ignored (the limit kept its default), and a
    group set both as JSON and member by member took one of them without a word."""
    from detector.settings import check_setting_names, load_settings

    check_setting_names(
        {"TRUEFRAME_LIMITS__MAX_PIXELS": "5", "TRUEFRAME_TEST_DATABASE_URL": "x", "PATH": "/"}
    )
    with pytest.raises(errors.SettingsInvalid) as typo:
        check_setting_names({"TRUEFRAME_LIMITS__MAX_PIXEL": "5", "trueframe_limit__max_pixels": "5"})
    assert "TRUEFRAME_LIMITS__MAX_PIXEL is not a setting (did you mean TRUEFRAME_LIMITS__MAX_PIXELS?)" in str(
        typo.value
    )
    assert "TRUEFRAME_LIMIT__MAX_PIXELS is not a setting" in str(typo.value)
    with pytest.raises(
        errors.SettingsInvalid, match="TRUEFRAME_LIMITS and TRUEFRAME_LIMITS__MAX_PIXELS both"
    ):
        check_setting_names({"TRUEFRAME_LIMITS": '{"max_pixels": 5}', "TRUEFRAME_LIMITS__MAX_PIXELS": "9"})
    monkeypatch.setenv("TRUEFRAME_LIMITS", '{"max_pixel": 5}')
    with pytest.raises(errors.SettingsInvalid) as extra:
        load_settings()
    assert "TRUEFRAME_LIMITS: 'max_pixel' is not one of its settings (did you mean 'max_pixels'?)" in str(
        extra.value
    )
    monkeypatch.setenv("TRUEFRAME_LIMITS", '{"max_pixels": 5}')
    assert load_settings().limits.max_pixels == 5


def test_a_command_that_reads_no_setting_refuses_a_misspelt_one_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``trueframe schema`` exited 0 with TRUEFRAME_SERVE__MAX_QUEU set (README: every command)."""
    from serving.cli import main

    monkeypatch.setenv("TRUEFRAME_SERVE__MAX_QUEU", "4")
    assert main(["schema"]) == 2
    assert "TRUEFRAME_SERVE__MAX_QUEU is not a setting" in capsys.readouterr().err


def test_track_and_item_aggregation() -> None:
    assert track_logit([]) is None
    assert track_logit([1.0, 3.0]) == pytest.approx(2.0)
    assert item_logit([]) is None
    long_large = TrackEvidence(logits=[2.0] * 30, mean_side=200.0)
    brief_small = TrackEvidence(logits=[-4.0], mean_side=20.0)
    combined = item_logit([long_large, brief_small])
    assert combined is not None
    assert 1.9 < combined < 2.0, "a brief tiny track barely moves the score"
    assert item_logit([TrackEvidence(logits=[], mean_side=50.0)]) is None


def test_a_list_setting_that_is_not_json_and_a_secret_like_value_are_reported_safely(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from detector.errors import SettingsInvalid
    from detector.settings import load_settings

    monkeypatch.setenv("TRUEFRAME_SERVE__CORS_ORIGINS", "https://x.example")  # a list wants JSON
    with pytest.raises(SettingsInvalid, match="a list or object setting takes JSON"):
        load_settings()
    monkeypatch.delenv("TRUEFRAME_SERVE__CORS_ORIGINS")
    monkeypatch.setenv("TRUEFRAME_SERVE__API_KEYS_REQUIRED", "hunter2")
    with pytest.raises(SettingsInvalid) as refused:
        load_settings()
    assert "TRUEFRAME_SERVE__API_KEYS_REQUIRED=(hidden)" in refused.value.message
    assert "hunter2" not in refused.value.message


@pytest.mark.parametrize("secret", ["", "   "])
def test_an_empty_webhook_secret_is_refused(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    """Before: `TRUEFRAME_SERVE__WEBHOOK_SECRET=` (a template variable left empty) was taken, open-mode
    jobs were allowed a `callback_url`, and their callbacks were signed with an empty HMAC key; one of
    blanks only passed the first fix."""
    from detector.errors import SettingsInvalid
    from detector.settings import load_settings

    monkeypatch.setenv("TRUEFRAME_SERVE__WEBHOOK_SECRET", secret)
    with pytest.raises(SettingsInvalid, match=r"TRUEFRAME_SERVE__WEBHOOK_SECRET=\(hidden\): .*blanks"):
        load_settings()


@pytest.mark.parametrize("variable", ["TRUEFRAME_DATA_DIR", "TRUEFRAME_MODELS__WEIGHTS_DIR"])
def test_an_empty_folder_setting_is_refused(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """Before: an empty value read as `.`, and the store and uploads (or the weights) went to the
    working folder without a word."""
    from detector.errors import SettingsInvalid
    from detector.settings import load_settings

    monkeypatch.setenv(variable, "")
    with pytest.raises(SettingsInvalid, match=f"{variable}='': Value error, an empty folder is the working"):
        load_settings()


def test_a_malformed_group_value_names_the_variable_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: "error parsing value for field "serve" from source "EnvSettingsSource"" for a list
    member that is not JSON, and TRUEFRAME_SAMPLING__FRAMES (never set) for a bad key of
    TRUEFRAME_SAMPLING's JSON."""
    from detector.errors import SettingsInvalid
    from detector.settings import load_settings

    monkeypatch.setenv("TRUEFRAME_SERVE__CORS_ORIGINS", "https://x.example")
    with pytest.raises(SettingsInvalid) as member:
        load_settings()
    assert member.value.message.startswith(
        "TRUEFRAME_SERVE__CORS_ORIGINS='https://x.example': not JSON (Expecting value"
    )
    monkeypatch.delenv("TRUEFRAME_SERVE__CORS_ORIGINS")
    monkeypatch.setenv("TRUEFRAME_SAMPLING", "frames=16")
    with pytest.raises(SettingsInvalid) as group:
        load_settings()
    assert group.value.message.startswith("TRUEFRAME_SAMPLING='frames=16': not JSON (")
    assert "EnvSettingsSource" not in group.value.message
    monkeypatch.setenv("TRUEFRAME_SAMPLING", '{"frames": "many"}')
    with pytest.raises(SettingsInvalid) as key:
        load_settings()
    assert key.value.message.startswith("TRUEFRAME_SAMPLING (key 'frames': 'many'): Input should be")
    monkeypatch.delenv("TRUEFRAME_SAMPLING")
    monkeypatch.setenv("TRUEFRAME_SAMPLING__FRAMES", "many")  # the member form is named as it was set
    with pytest.raises(SettingsInvalid) as plain:
        load_settings()
    assert plain.value.message.startswith("TRUEFRAME_SAMPLING__FRAMES='many': Input should be")


def test_a_group_whose_json_holds_a_secret_is_hidden_and_a_list_item_names_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review findings: TRUEFRAME_SERVE's broken JSON was printed whole, webhook secret included, and
    a bad item of a list member was named TRUEFRAME_SERVE__CORS_ORIGINS__0, a variable nobody set."""
    from detector.errors import SettingsInvalid
    from detector.settings import load_settings

    monkeypatch.setenv("TRUEFRAME_SERVE", '{"webhook_secret": "s3cr3t-value", }')
    with pytest.raises(SettingsInvalid) as group:
        load_settings()
    assert group.value.message.startswith("TRUEFRAME_SERVE=(hidden): not JSON (")
    assert "s3cr3t" not in group.value.message
    monkeypatch.delenv("TRUEFRAME_SERVE")
    monkeypatch.setenv("TRUEFRAME_SERVE__CORS_ORIGINS", "[1]")
    with pytest.raises(SettingsInvalid) as item:
        load_settings()
    assert item.value.message.startswith("TRUEFRAME_SERVE__CORS_ORIGINS (item 0)=1: Input should be")
