"""The scan's steps without Ray, on generated media: load, provenance, assembly and their error rows.

(The face and classifier steps need MTCNN and model weights: the Ray scan in ``tests/e2e`` runs them.)
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from detector.faces.extract import FaceResult
from detector.report.schema import Report
from detector.settings import Settings
from serving.scan.output import report_row
from serving.scan.steps import AssembleStep, ItemState, LoadStep, ProvenanceStep, states_table
from tests.support import mediagen
from tests.support.c2pa_signing import make_chain, sign_media
from tests.support.scan_media import face_jpeg, hostile_files
from tests.support.servicekit import IDENTITY_FUSION


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """MesoNet's manifest entry and a fixed fusion file: the assembler needs no weights."""
    fusion = tmp_path_factory.mktemp("fusion") / "fusion.toml"
    fusion.write_text(IDENTITY_FUSION, encoding="utf-8")
    return Settings(
        models={"face_model": "meso4.df", "synthetic_model": None},
        fusion={"fusion_file": fusion},
    )


def run_step(step: LoadStep | ProvenanceStep, states: list[ItemState]) -> list[ItemState]:
    """One ``map_batches`` call as Ray makes it: a pyarrow table in, one out (ids kept in order)."""
    ids = [10 + i for i in range(len(states))]
    out = step(states_table(ids, states))
    assert out.column("id").to_pylist() == ids
    return [pickle.loads(b) for b in out.column("state").to_pylist()]


def load(settings: Settings, paths: list[Path], frames: int | None = None) -> list[ItemState]:
    return run_step(LoadStep(settings, frames), [ItemState(path=str(p)) for p in paths])


def test_load_step_probes_and_samples_images_and_videos(settings: Settings, tmp_path: Path) -> None:
    photo = face_jpeg(tmp_path / "face.jpg")
    clip = mediagen.write_face_clip(tmp_path / "clip.mp4", n_frames=20, fps=10, size=(160, 120))
    image, video = load(settings, [photo, clip], frames=3)
    assert image.error is None
    assert image.info is not None
    assert image.sample is not None
    assert (image.info.kind, image.info.format) == ("image", "jpeg")
    assert len(image.sample.frames) == 1
    assert image.media is not None
    assert image.media.name == "face.jpg"
    assert video.error is None
    assert video.info is not None
    assert video.sample is not None
    assert (video.info.kind, video.info.width, video.info.height) == ("video", 160, 120)
    assert len(video.sample.frames) == 3
    assert [f.timestamp for f in video.sample.frames] == sorted(f.timestamp for f in video.sample.frames)
    assert set(video.timings) == {"media", "frames"}


def test_load_step_gives_each_bad_file_its_typed_error(settings: Settings, tmp_path: Path) -> None:
    codes = hostile_files(tmp_path)
    big = mediagen.write_image(tmp_path / "big.png", mediagen.face_photo(), "png")
    strict = settings.model_copy(deep=True)
    strict.limits.max_image_bytes = 100_000
    assert big.stat().st_size > strict.limits.max_image_bytes
    paths = [tmp_path / name for name in codes] + [big, tmp_path / "missing.jpg"]
    states = load(strict, paths)
    expected = [*codes.values(), "media_too_large", "source_unreadable"]
    assert [s.error.code if s.error else None for s in states] == expected
    assert all(s.sample is None for s in states)


def test_provenance_step_reads_credentials_and_drops_the_bytes(settings: Settings, tmp_path: Path) -> None:
    plain = face_jpeg(tmp_path / "plain.jpg")
    signed = tmp_path / "signed.jpg"
    signed.write_bytes(sign_media(make_chain(), plain.read_bytes(), "image/jpeg"))
    states = run_step(ProvenanceStep(settings), load(settings, [plain, signed, tmp_path / "gone.jpg"]))
    unsigned, credentials, gone = states
    assert unsigned.provenance is not None
    assert unsigned.provenance.state == "absent"
    assert credentials.provenance is not None
    assert credentials.provenance.state == "valid_untrusted"  # no trust anchors configured
    assert gone.error is not None
    assert gone.provenance is None
    assert all(s.media is None for s in states), "the bytes never travel past provenance"


def test_provenance_step_finds_an_invisible_watermark_like_the_pipeline(
    settings: Settings, tmp_path: Path
) -> None:
    photo = mediagen.face_photo()
    marked = mediagen.write_image(tmp_path / "marked.png", mediagen.sd_marked(photo), "png")
    plain = mediagen.write_image(tmp_path / "plain.png", photo, "png")
    found, clean = run_step(ProvenanceStep(settings), load(settings, [marked, plain]))
    assert found.provenance is not None
    assert found.provenance.watermark is not None
    assert found.provenance.watermark.scheme == "stable-diffusion-v1"
    assert clean.provenance is not None
    assert clean.provenance.watermark is None
    assert {"provenance", "watermark"} <= set(found.timings)


def test_assemble_step_builds_the_report_row_of_each_item(settings: Settings, tmp_path: Path) -> None:
    photo = face_jpeg(tmp_path / "face.jpg")
    (state,) = run_step(ProvenanceStep(settings), load(settings, [photo]))
    assert state.sample is not None
    state.faces = FaceResult(per_frame=[[] for _ in state.sample.frames], tracks=[])  # what FaceStep found
    step = AssembleStep(settings)
    report = step.assembler.build(step.outputs(state))
    assert isinstance(report, Report)
    row = step.result(state)
    assert row == {**report_row(report), "seconds": row["seconds"], "timings": row["timings"]}
    assert row["error_code"] is None
    assert row["faces"] == 0
    assert row["provenance_state"] == "absent"
    assert row["verdict"] == report.score.verdict
    assert {"media", "frames", "provenance"} <= set(json.loads(row["timings"]))


def test_assemble_step_writes_error_rows_and_survives_a_bug(settings: Settings, tmp_path: Path) -> None:
    codes = hostile_files(tmp_path)
    too_small, broken = load(settings, [tmp_path / "tiny.png", face_jpeg(tmp_path / "ok.jpg")])
    assert too_small.error is not None
    assert broken.error is None
    broken.faces = None  # as if the face step had lost its result: a bug, not bad input
    out = AssembleStep(settings)(states_table([1, 2], [too_small, broken]))
    assert out.column("id").to_pylist() == [1, 2]
    small_row, bug_row = (pickle.loads(b) for b in out.column("result").to_pylist())
    assert small_row["error_code"] == codes["tiny.png"]
    assert small_row["error_message"]
    assert bug_row["error_code"] == "internal_error"
    assert bug_row["error_message"].startswith("report: AssertionError")
    assert (bug_row["kind"], bug_row["format"]) == ("image", "jpeg")
    assert "media" in json.loads(bug_row["timings"])


def test_assemble_step_hashes_the_frames_and_reports_a_known_match(
    settings: Settings, tmp_path: Path
) -> None:
    from detector.provenance.pdq import pdq_hex
    from serving.jobs.store import open_store
    from serving.known.lists import import_csv
    from tests.support import known_media as km

    original = km.reviewed_photo()
    reviewed_hash, _ = pdq_hex(km.decode(original))
    known_settings = settings.model_copy(update={"data_dir": tmp_path / "data"})
    store = open_store(known_settings)
    import_csv(
        store,
        "partner",
        f"item,kind,verdict,reviewed_at,hash\np1,image,manipulated,1714557600,{reviewed_hash}\n",
    )
    store.close()
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(km.reencoded(original))
    (state,) = run_step(ProvenanceStep(known_settings), load(known_settings, [copy]))
    assert state.sample is not None
    state.faces = FaceResult(per_frame=[[] for _ in state.sample.frames], tracks=[])
    row = AssembleStep(known_settings).result(state)
    assert (row["known_match_verdict"], row["known_match_list"]) == ("manipulated", "partner")
    assert row["known_match_distance"] <= 31
    assert row["verdict"] == "manipulated"  # the stated fusion rule
    assert len(row["pdq"]) == 64
    assert "known_media" in json.loads(row["timings"])


def test_a_row_carries_the_calibration_range_when_the_report_has_one() -> None:
    from detector.media.loader import MediaInfo
    from tests.support.fake_analyzer import fake_report

    info = MediaInfo("image", "jpeg", "image/jpeg", 10, "0" * 64, 64, 48)
    report = fake_report(info, "x.jpg", 1, 0.2, "meso4.df")
    assert report.score.manipulated_range is not None
    row = report_row(report)
    assert (row["manipulated_low"], row["manipulated_high"]) == report.score.manipulated_range
    assert row["manipulated_low"] < row["manipulated"] < row["manipulated_high"]
    bare = report.model_copy(update={"score": report.score.model_copy(update={"manipulated_range": None})})
    assert (report_row(bare)["manipulated_low"], report_row(bare)["manipulated_high"]) == (None, None)


def test_a_rule_decided_row_names_the_signal_the_rule_rests_on_and_the_rule() -> None:
    """An image whose signed credentials declare AI is ai_generated by rule; its row named the base
    rate (the largest contribution, pushing towards authentic) as the top signal, with no rule column."""
    from detector.media.loader import MediaInfo
    from tests.support.fake_analyzer import declared_ai, fake_report

    info = MediaInfo("image", "jpeg", "image/jpeg", 10, "0" * 64, 64, 48)
    row = report_row(declared_ai(fake_report(info, "x.jpg", 1, 0.2, "meso4.df")))
    assert (row["verdict"], row["rule"]) == ("ai_generated", "signed_ai_declaration")
    assert (row["top_signal"], row["top_signal_contribution"]) == ("content_credentials", None)
    plain = report_row(fake_report(info, "x.jpg", 1, 0.2, "meso4.df"))
    assert (plain["top_signal"], plain["rule"]) == ("face_model", None)


def test_the_web_form_knows_the_same_deciding_signals_as_the_reports() -> None:
    import re

    from detector.report.schema import DECIDING_SIGNALS
    from tests.support.paths import ROOT

    script = (ROOT / "serving" / "static" / "report.js").read_text(encoding="utf-8")
    table = re.search(r"const DECIDING_SIGNALS = \{(.*?)\};", script, re.S)
    assert table is not None
    assert dict(re.findall(r"(\w+): \"(\w+)\"", table.group(1))) == DECIDING_SIGNALS
