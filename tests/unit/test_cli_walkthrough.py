"""Command-line findings of a walkthrough: each bad option or setting is one typed line (exit 2),
never a traceback, a silent default or a wrong value taken as given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.errors import InvalidRequest
from detector.settings import get_settings
from serving.cli import main


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """Settings read again from the (monkeypatched) environment, and forgotten afterwards."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one stderr line of a command that exits 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert "Traceback" not in err
    return err


def _argparse_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The usage error of an option argparse refuses (exit 2)."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("device", ["mps", "xpu", "meta", "gpu", "cuda:x"])
def test_a_device_setting_torch_knows_but_trueframe_does_not_is_refused(
    device: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fresh_settings: None
) -> None:
    """Before: RuntimeError (mps), AssertionError (xpu), NotImplementedError (meta) tracebacks, and
    ``gpu`` an invalid_request that did not name the variable."""
    monkeypatch.setenv("TRUEFRAME_RUNTIME__DEVICE", device)
    err = _refused(["analyze", "x.png"], capsys)
    assert err.startswith(f"error: settings_invalid: TRUEFRAME_RUNTIME__DEVICE={device!r}: ")
    assert "auto, cpu, cuda or cuda:N" in err


@pytest.mark.parametrize("device", ["mps", "meta", "xpu"])
def test_the_evaluate_device_option_is_checked_by_argparse(
    device: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _argparse_refused(["evaluate", "--model", "meso4.df", "--data", ".", "--device", device], capsys)
    assert "argument --device: unknown device" in err


def test_select_device_names_the_option_and_checks_the_cuda_index(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from detector.runtime import select_device

    with pytest.raises(InvalidRequest, match="--device: unknown device 'mps'"):
        select_device("mps", "--device")
    assert select_device("cpu").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert select_device("cuda:1").index == 1
    with pytest.raises(InvalidRequest, match=r"TRUEFRAME_RUNTIME__DEVICE: device 'cuda:2' .* only 2 CUDA"):
        select_device("cuda:2")


def test_a_media_name_that_is_not_utf8_is_carried_with_replacement_characters() -> None:
    from detector.report.schema import MediaSection

    fields = {"kind": "image", "format": "png", "mime": "image/png", "size_bytes": 1, "sha256": "0"}
    section = MediaSection(name="bad\udcffname.png", width=1, height=1, **fields)  # type: ignore[arg-type]
    assert section.name == "bad\ufffdname.png"
    assert '"name":"bad\ufffdname.png"' in section.model_dump_json()
    assert MediaSection(name="lone\ud800", width=1, height=1, **fields).name == "lone?"  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "soon"])
def test_weights_fetch_refuses_a_timeout_that_is_not_above_zero(
    timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: ``--timeout 0`` reached requests, which failed with a ValueError traceback."""
    err = _argparse_refused(["weights", "fetch", "mesonet", "--timeout", timeout], capsys)
    assert "argument --timeout: " in err


@pytest.mark.parametrize("variable", ["TRUEFRAME_MODELS__FACE_MODEL", "TRUEFRAME_MODELS__SYNTHETIC_MODEL"])
def test_an_unknown_model_setting_is_named_with_the_known_models(
    variable: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fresh_settings: None
) -> None:
    """Before: the variable went unnamed, and the synthetic model's message was "not of the form
    'arch.tag'" without the known names."""
    monkeypatch.setenv(variable, "nosuch")
    err = _refused(["analyze", "x.png"], capsys)
    assert err.startswith(f"error: unknown_model: {variable}: unknown model 'nosuch'; known: ")
    assert "effnetlite0.faces4" in err


@pytest.mark.parametrize("name", ["analyze", "scan"])
def test_an_empty_or_unknown_model_option_is_refused(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], fresh_settings: None
) -> None:
    """Before: ``--model ''`` silently scored with the settings' model."""
    given = {
        "analyze": [str(tmp_path / "x.png")],
        "scan": [str(tmp_path), "--out", str(tmp_path / "r.jsonl")],
    }
    command = [name, *given[name]]
    err = _argparse_refused([*command, "--model", ""], capsys)
    assert "argument --model: an empty model name" in err
    err = _refused([*command, "--model", "nosuch"], capsys)
    assert err.startswith("error: unknown_model: --model: unknown model 'nosuch'; known: ")


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    """A regular file where a folder is wanted."""
    path = tmp_path / "plain-file"
    path.write_text("x")
    return path


def test_a_weights_folder_that_cannot_be_made_is_named(
    a_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: FileExistsError tracebacks."""
    argv = ["weights", "import", "mesonet", "--from", str(tmp_path)]
    err = _refused([*argv, "--weights-dir", str(a_file)], capsys)
    assert err.startswith(f"error: invalid_request: --weights-dir {a_file} cannot be created: ")
    monkeypatch.setenv("TRUEFRAME_MODELS__WEIGHTS_DIR", str(a_file))
    get_settings.cache_clear()
    try:
        err = _refused(argv, capsys)
    finally:
        get_settings.cache_clear()
    assert err.startswith(f"error: invalid_request: TRUEFRAME_MODELS__WEIGHTS_DIR {a_file} cannot be created")


@pytest.mark.parametrize("where", ["a file", "/proc"])
def test_a_data_folder_that_cannot_be_made_is_named(
    where: str,
    a_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_settings: None,
) -> None:
    """Before: FileExistsError (a regular file) or FileNotFoundError (``/proc/nope``) tracebacks."""
    folder = a_file if where == "a file" else Path("/proc/nope")
    err = _refused(["keys", "--data-dir", str(folder), "list"], capsys)
    assert err.startswith(f"error: invalid_request: --data-dir {folder} cannot be created: ")
    err = _refused(["serve", "--no-ray", "--data-dir", str(folder)], capsys)
    assert err.startswith(f"error: invalid_request: --data-dir {folder} cannot be created: ")
    monkeypatch.setenv("TRUEFRAME_DATA_DIR", str(folder))
    get_settings.cache_clear()
    err = _refused(["keys", "list"], capsys)
    assert err.startswith(f"error: invalid_request: TRUEFRAME_DATA_DIR {folder} cannot be created: ")


@pytest.mark.parametrize("port", ["99999", "65536", "-5", "http"])
def test_serve_refuses_a_port_outside_the_settings_bounds(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: 99999 listened on 34463 (mod 65536); -5 failed in uvicorn with exit 3."""
    from serving.cli import build_parser

    with pytest.raises(SystemExit) as exit_:  # parsed only: the old code went on to listen
        build_parser().parse_args(["serve", "--no-ray", "--port", port])
    assert exit_.value.code == 2
    assert "argument --port: " in capsys.readouterr().err
    assert build_parser().parse_args(["serve", "--port", "0"]).port == 0  # as TRUEFRAME_SERVE__PORT


def test_the_one_model_evaluation_takes_1_to_512_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: ``--frames 100000`` was taken (the README and analyze say 1 to 512)."""
    argv = ["evaluate", "--model", "meso4.df", "--data", str(tmp_path), "--frames", "100000"]
    err = _refused(argv, capsys)
    assert err == "error: invalid_request: --frames must be between 1 and 512, not 100000"


def test_calibrate_refuses_a_variant_it_does_not_fit_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: ``upscaled`` (an evaluate variant) passed the check."""
    err = _refused(["calibrate", "--dev-dir", str(tmp_path), "--variants", "upscaled", "--dry-run"], capsys)
    assert err.startswith("error: invalid_request: --variants takes original, matched, thumbnail")
    assert err.endswith("not upscaled")


@pytest.mark.parametrize(
    ("manipulated", "shown"), [(0.9996, ">0.999"), (0.0002, "<0.001"), (0.5, "0.5"), (0.0123, "0.0123")]
)
def test_analyze_never_prints_a_bare_0_or_1(manipulated: float, shown: str) -> None:
    """Before: a C2PA-declared AI image printed ``P(manipulated) 1 (over 99%)``."""
    from detector.media.loader import MediaInfo
    from serving.cli.analyze import summarize
    from tests.support.fake_analyzer import fake_report

    info = MediaInfo("image", "jpeg", "image/jpeg", 10, "0" * 64, 64, 48)
    text = summarize(fake_report(info, "x.jpg", 1, manipulated, "meso4.df"), "x.jpg")
    assert f"P(manipulated) {shown} (" in text
    assert f"  face track 0: 1 frame(s), ~60px, P(manipulated) {shown}" in text.splitlines()


def test_a_bad_fusion_file_setting_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a file holding ``x=1`` gave pydantic's multi-line dump without the variable, and an
    empty value read the folder ``.`` ("Is a directory")."""
    from detector.errors import ModelError
    from detector.scoring.fusion.params import load_parameters
    from detector.settings import load_settings

    bad = tmp_path / "fusion.toml"
    bad.write_text("x = 1\n")
    with pytest.raises(ModelError) as refused:
        load_parameters(bad)
    assert refused.value.message.startswith(
        f"TRUEFRAME_FUSION__FUSION_FILE: invalid fusion parameters {bad}: "
    )
    assert "x: Extra inputs are not permitted" in refused.value.message
    assert "\n" not in refused.value.message
    with pytest.raises(ModelError, match="TRUEFRAME_FUSION__FUSION_FILE: cannot read fusion parameters"):
        load_parameters(tmp_path / "missing.toml")
    monkeypatch.setenv("TRUEFRAME_FUSION__FUSION_FILE", "")
    assert load_settings().fusion.fusion_file is None  # the shipped file


def test_a_one_model_evaluation_without_a_scored_fake_says_so(tmp_path: Path) -> None:
    """Before: exit 0 with ``n_fake 0`` and AUC nan, and not a word about why."""
    import json

    from datasets.readers import Sample
    from detector.evaluation.models import FrameScore, class_warnings, render, write_outputs

    real, fake = Sample(tmp_path / "real.jpg", 0), Sample(tmp_path / "fake.jpg", 1)
    scores = [FrameScore(real, 0, -1.0)]
    warnings = class_warnings([real, fake], scores, no_face=1)
    assert warnings == [
        "no fake item was scored (1 given, 1 frame(s) without a face in all): "
        "AUC, AP and EER need both classes and are not measured"
    ]
    assert class_warnings([real, fake], [*scores, FrameScore(fake, 0, 1.0)], no_face=0) == []
    result = {"model": "meso4.df", "threshold": "logit 0", "levels": {}, "groups": {}, "warnings": warnings}
    assert render(result).startswith(f"WARNING: {warnings[0]}\n")
    write_outputs(result, scores, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["warnings"] == warnings


def test_a_cuda_device_turns_tf32_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch convolves float32 in TF32 on CUDA by default; the H200 run moved face probabilities by
    0.012 from the CPU's. Choosing a CUDA device makes float32 IEEE again; choosing the CPU leaves
    torch's flags alone."""
    import torch

    from detector.runtime import select_device

    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision = matmul.fp32_precision = "tf32"
    try:
        select_device("cpu")
        assert (conv.fp32_precision, matmul.fp32_precision) == ("tf32", "tf32")
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        select_device("auto")
        assert (conv.fp32_precision, matmul.fp32_precision) == ("ieee", "ieee")
    finally:
        conv.fp32_precision, matmul.fp32_precision = before


def test_analyze_marks_face_ratings_the_score_does_not_count() -> None:
    """A photo's face model has weight 0 and an out-of-scope clip has no verdict, yet the text output
    printed each face track's P(manipulated) (and a clip's "frames that drove it") as if it counted,
    where the web form draws such boxes grey, "not counted"."""
    from detector.media.loader import MediaInfo
    from serving.cli.analyze import summarize
    from tests.support.fake_analyzer import fake_report

    image = MediaInfo("image", "jpeg", "image/jpeg", 10, "0" * 64, 64, 48)
    counted = summarize(fake_report(image, "x.jpg", 1, 0.6, "meso4.df"), "x.jpg").splitlines()
    assert "  face track 0: 1 frame(s), ~60px, P(manipulated) 0.6" in counted
    photo = summarize(fake_report(image, "x.jpg", 1, 0.6, "meso4.df", face_counted=False), "x.jpg")
    track = (
        "  face track 0: 1 frame(s), ~60px, P(manipulated) 0.6 (face model alone; not counted in the score)"
    )
    assert track in photo.splitlines()
    video = MediaInfo("video", "mp4", "video/mp4", 10, "0" * 64, 64, 48, fps=25.0, duration_s=4.0)
    clip = fake_report(video, "x.mp4", 4, 0.6, "meso4.df")
    assert "  frames that drove it: " in summarize(clip, "x.mp4")
    off = clip.model_copy(update={"score": clip.score.model_copy(update={"verdict": "out_of_scope"})})
    text = summarize(off, "x.mp4")
    assert "frames that drove it" not in text
    assert (
        "P(manipulated) 0.6 (face model alone; not counted: no detector applies, no verdict is given)" in text
    )
