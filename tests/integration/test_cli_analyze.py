"""End to end through the installed console script: `trueframe analyze`, `schema`, error exits."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detector.settings import Settings
from tests.support import mediagen


def run_cli(
    args: list[str], weights_dir: Path | None = None, timeout: int = 600, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh process; ``weights_dir`` switches the face model to imported MesoNet."""
    env = dict(os.environ)
    if weights_dir is not None:
        env["TRUEFRAME_MODELS__WEIGHTS_DIR"] = str(weights_dir)
        env["TRUEFRAME_MODELS__FACE_MODEL"] = "meso4.df"
    env.update({f"TRUEFRAME_{key.upper()}": value for key, value in settings.items()})
    return subprocess.run(
        [sys.executable, "-m", "serving.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.mark.slow
def test_analyze_json_on_a_real_deepfake_video(shared_data: Path, mesonet_weights_dir: Path) -> None:
    clip = shared_data / "deepfake" / "ffpp_c23" / "Deepfakes" / "519_515.mp4"
    # the clip's faces are 93-102 px: above the 78 px MesoNet (256 px input) searches by default
    result = run_cli(["analyze", "--json", "--frames", "8", str(clip)], mesonet_weights_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["media"]["kind"] == "video"
    assert report["media"]["width"] == 640
    assert len(report["frames"]) == 8
    main_track = max(report["tracks"], key=lambda t: t["length"])
    assert main_track["length"] >= 7
    assert all(face["logit"] is not None for face in main_track["faces"])
    assert report["score"]["authenticity"] is not None
    assert 0.0 <= report["score"]["authenticity"] <= 1.0
    assert "meso4.df" in {m["name"] for m in report["models"]}
    assert report["provenance"]["state"] == "absent"


def test_image_without_faces_says_so_instead_of_scoring(tmp_path: Path) -> None:
    from skimage import data

    path = mediagen.write_image(tmp_path / "coffee.png", data.coffee(), "png")
    no_synthetic = run_cli(["analyze", "--json", str(path)], models__synthetic_model="")
    assert no_synthetic.returncode == 0, no_synthetic.stderr
    report = json.loads(no_synthetic.stdout)
    assert report["tracks"] == []
    assert report["score"]["authenticity"] is None
    assert report["score"]["verdict"] == "out_of_scope"
    assert "no face" in report["score"]["basis"].lower()

    with_synthetic = run_cli(["analyze", str(path)])
    assert with_synthetic.returncode == 0, with_synthetic.stderr
    assert "No face was found (searched 1 frame(s) for faces of at least 32 px;" in with_synthetic.stdout
    assert "so the face-forgery model does not count" in with_synthetic.stdout
    assert "synthetic-image model rates the image" in with_synthetic.stdout
    line = next(ln for ln in with_synthetic.stdout.splitlines() if ln.startswith("  P(manipulated) "))
    words = r"(under 1%|over 99%|\d{1,2}%)"
    assert re.fullmatch(rf"  P\(manipulated\) (\S+) \({words}\), authenticity {words}", line), line
    assert "0.000" not in line
    assert "1.000" not in line
    # the shipped fusion carries its spread: the calibration's range follows, in the same words
    lines = with_synthetic.stdout.splitlines()
    span = lines[lines.index(line) + 1]
    pattern = rf"  calibration range of P\(manipulated\): {words}( to {words})? \(95%\)"
    assert re.fullmatch(pattern, span), span


def test_shipped_models_score_a_face_image_by_default(tmp_path: Path) -> None:
    path = mediagen.write_image(tmp_path / "face.jpg", mediagen.face_photo(), "jpeg")
    result = run_cli(["analyze", "--json", str(path)])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    defaults = Settings().models
    assert {m["name"] for m in report["models"]} == {defaults.face_model, defaults.synthetic_model}
    assert report["score"]["verdict"] != "out_of_scope"
    assert 0.0 <= report["score"]["authenticity"] <= 1.0
    face_signal = next(s for s in report["score"]["signals"] if s["name"] == "face_model")
    assert face_signal["present"] is True
    assert face_signal["contribution"] is not None


def test_a_model_the_fusion_was_not_fitted_for_is_said_so_and_held_back(
    tmp_path: Path, mesonet_weights_dir: Path
) -> None:
    """MesoNet named as the face model: the summary, the P line and the bands all say the shipped
    calibration does not cover it, and no verdict is at either end of the scale."""
    path = mediagen.write_image(tmp_path / "face.jpg", mediagen.face_photo(), "jpeg")
    result = run_cli(["analyze", str(path)], mesonet_weights_dir)
    assert result.returncode == 0, result.stderr
    assert "by detectors not calibrated together" in result.stdout
    assert "by the calibrated detectors" not in result.stdout
    assert "(NOT calibrated for these models)" in result.stdout
    assert "(rates measured for the fitted models, not these)" in result.stdout
    verdict = next(ln for ln in result.stdout.splitlines() if ln.startswith("  verdict: "))
    assert not verdict.startswith(("  verdict: authentic.", "  verdict: manipulated."))


def test_analyze_matches_the_services_hash_lists_as_a_scan_does(tmp_path: Path) -> None:
    """Before, ``analyze`` never looked at the store's reviewed hash lists, yet said that nobody had
    reviewed a near-duplicate, while ``scan`` of the same file gave the reviewers' verdict."""
    from serving.jobs.store import open_store
    from serving.known.lists import import_csv

    path = mediagen.write_image(tmp_path / "face.jpg", mediagen.face_photo(), "jpeg")
    data = tmp_path / "data"
    first = run_cli(["analyze", "--json", str(path)], data_dir=str(data))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["known_match"] is None, "no store yet: nothing to match"
    store = open_store(Settings(data_dir=data))
    try:
        digest = json.loads(first.stdout)["perceptual_hash"]["hashes"][0]
        csv = f"item,kind,verdict,reviewed_at,hash\nsrc1,image,manipulated,2026-12-01T00:00:00Z,{digest}\n"
        import_csv(store, "partner", csv)
    finally:
        store.close()
    report = json.loads(run_cli(["analyze", "--json", str(path)], data_dir=str(data)).stdout)
    assert (report["known_match"]["list_name"], report["known_match"]["verdict"]) == (
        "partner",
        "manipulated",
    )
    assert report["score"]["verdict"] == "manipulated"
    text = run_cli(["analyze", str(path)], data_dir=str(data)).stdout
    assert "No near-duplicate of this media has been reviewed" not in text


def test_analyze_with_a_store_it_cannot_reach_is_one_line_before_any_file(tmp_path: Path) -> None:
    path = mediagen.write_image(tmp_path / "face.jpg", mediagen.face_photo(), "jpeg")
    result = run_cli(["analyze", str(path)], database_url="postgresql://x@127.0.0.1:1/db")
    assert result.returncode == 2
    assert result.stderr.startswith("error: store_unavailable: cannot reach the database at postgresql://x@")
    assert result.stdout == ""


def test_bad_file_exits_2_with_one_line_and_others_still_run(tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is text, not a JPEG\n")
    good = mediagen.write_image(tmp_path / "face.jpg", mediagen.face_photo(), "jpeg")
    result = run_cli(["analyze", str(bad), str(good)])
    assert result.returncode == 2
    error_lines = result.stderr.strip().splitlines()
    assert len(error_lines) == 1
    assert error_lines[0].startswith(f"{bad}: error: unsupported_media_type: ")
    assert "face track 0" in result.stdout
    as_json = run_cli(["analyze", "--json", str(bad)])
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["error"]["code"] == "unsupported_media_type"
    gone = run_cli(["analyze", str(tmp_path / "gone.jpg")])  # the code the README's table names
    assert gone.stderr.startswith(f"{tmp_path / 'gone.jpg'}: error: source_unreadable: cannot read gone.jpg")


def test_a_file_name_that_is_not_utf8_is_reported_and_the_batch_goes_on(tmp_path: Path) -> None:
    """Before: ``--json`` stopped at it with PydanticSerializationError ("surrogates not allowed"),
    exit 1, and the files after it were never reported (walkthrough finding)."""
    photo = mediagen.write_image(tmp_path / "ok.jpg", mediagen.face_photo(), "jpeg")
    odd = tmp_path / os.fsdecode(b"bad\xffname.jpg")
    odd.write_bytes(photo.read_bytes())
    result = run_cli(["analyze", "--json", str(odd), str(photo)], models__synthetic_model="")
    assert result.returncode == 0, result.stderr
    names = [json.loads(line)["media"]["name"] for line in result.stdout.strip().splitlines()]
    assert names == ["bad\ufffdname.jpg", "ok.jpg"]


def test_an_image_over_the_pixel_limit_is_one_line_without_pillows_warning(tmp_path: Path) -> None:
    """12000 x 12000 is over the 120 M limit and under twice Pillow's guard, where Pillow only
    warns: the CLI printed its DecompressionBombWarning beside the typed error (walkthrough)."""
    big = tmp_path / "big.png"
    big.write_bytes(mediagen.png_claiming(12000, 12000))
    result = run_cli(["analyze", str(big)])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        next(ln for ln in result.stderr.splitlines() if "error: too_many_pixels" in ln)
    ]
    assert "DecompressionBombWarning" not in result.stderr


def test_missing_weights_say_how_to_get_them(tmp_path: Path) -> None:
    path = mediagen.write_image(tmp_path / "face.jpg", mediagen.face_photo(), "jpeg")
    env_dir = tmp_path / "empty-cache"
    result = run_cli(["analyze", str(path)], env_dir)
    assert result.returncode == 2
    assert "weights_missing" in result.stderr
    assert "trueframe weights import mesonet" in result.stderr


def test_schema_is_valid_json_with_version() -> None:
    result = run_cli(["schema"])
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert "x-schema-version" in schema
    assert {"media", "score", "tracks", "provenance"} <= set(schema["properties"])


def test_frames_option_is_validated(tmp_path: Path) -> None:
    result = run_cli(["analyze", "--frames", "0", str(tmp_path / "x.mp4")])
    assert result.returncode == 2
    assert "invalid_request" in result.stderr


def test_a_flat_drawing_is_out_of_scope_end_to_end(tmp_path: Path) -> None:
    from skimage import data

    silhouette = (~data.horse()).astype(np.uint8) * 255
    path = mediagen.write_image(tmp_path / "horse.png", np.stack([silhouette] * 3, axis=-1), "png")
    result = run_cli(["analyze", "--json", str(path)])
    assert result.returncode == 0, result.stderr
    score = json.loads(result.stdout)["score"]
    assert score["verdict"] == "out_of_scope"
    assert score["authenticity"] is None
