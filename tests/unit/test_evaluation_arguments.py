"""The evaluation commands refuse bad arguments and bad label files with a typed error before any work.

Found by a walkthrough: an output folder that cannot be created crashed after a quarter of an hour of
scoring; ``--limit -10`` scored all but the last ten items; a dev label ``Fake`` counted as real.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from detector.errors import InvalidRequest
from detector.evaluation.checks import evenly_spaced
from detector.evaluation.dev_set import read_dev_set
from serving.cli import main

HEADER = "relpath\tlabel\tkind\tsource_repo\tcommit\tsource_path\tsha256"


def _index(folder: Path, *rows: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "INDEX.tsv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    return _index(tmp_path / "dev", "synthetic/real/a.jpg\treal\tcamera\tx/y\t0\ta.jpg\t0")


@pytest.fixture
def not_a_folder(tmp_path: Path) -> Path:
    """A path under a regular file: no folder can be created there."""
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"x")
    return blocker / "sub"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("option", ["--out", "--cache"])
def test_the_dev_suite_checks_its_folders_before_scoring(
    option: str, dev: Path, not_a_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folders = {"--out": str(tmp_path / "out"), "--cache": str(tmp_path / "cache"), option: str(not_a_folder)}
    argv = ["evaluate", "--suite", "dev", "--dev-dir", str(dev), "--ffpp-dir", "", "--baseline", ""]
    code, err = _run([*argv, "--out", folders["--out"], "--cache", folders["--cache"]], capsys)
    assert code == 2
    assert f"error: invalid_request: {option} {not_a_folder} cannot be created" in err


def test_the_audit_and_one_model_runs_check_their_output_folder_first(
    not_a_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(["audit", "--utkface", str(tmp_path), "--out", str(not_a_folder)], capsys)
    assert (code, "--out" in err) == (2, True)
    missing = tmp_path / "nothing.csv"  # would fail later, at reading: the folder is checked first
    code, err = _run(
        ["evaluate", "--model", "meso4.df", "--csv", str(missing), "--out", str(not_a_folder)], capsys
    )
    assert code == 2
    assert f"--out {not_a_folder} cannot be created" in err


def test_calibrate_checks_its_variants_and_dev_folder(
    dev: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(["calibrate", "--dev-dir", str(dev), "--variants", "bogus", "--dry-run"], capsys)
    assert code == 2
    assert "--variants takes original" in err
    assert "not bogus" in err
    code, err = _run(["calibrate", "--dev-dir", str(tmp_path / "nowhere"), "--dry-run"], capsys)
    assert code == 2
    assert "INDEX.tsv missing" in err


def test_halves_and_variants_are_named_in_their_own_errors(
    dev: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(["evaluate", "--suite", "dev", "--dev-dir", str(dev), "--halves", "both"], capsys)
    assert code == 2
    assert "--halves takes report, calibrate (comma-separated), not both" in err


@pytest.mark.parametrize("command", ["evaluate", "calibrate", "audit", "scan"])
@pytest.mark.parametrize("limit", ["0", "-2", "two"])
def test_a_limit_is_a_count_of_at_least_one(
    command: str, limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--limit", limit])
    assert exit_.value.code == 2
    assert "--limit" in capsys.readouterr().err


def test_a_smoke_runs_subset_spreads_over_the_list() -> None:
    ordered = ["fake"] * 6 + ["real"] * 6  # INDEX.tsv lists fakes first: the first 4 are one class
    assert set(evenly_spaced(ordered, 4)) == {"fake", "real"}
    assert evenly_spaced(ordered, None) == ordered
    assert evenly_spaced(ordered, 50) == ordered


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("synthetic/fake/b.png\tFake\tgen\tx/y\t0\tb.png\t0", "label 'Fake' is neither real nor fake"),
        ("synthetic/fake/b.png\tmaybe\tgen\tx/y\t0\tb.png\t0", "label 'maybe' is neither real nor fake"),
        ("synthetic/fake/b.png\tfake", "no kind, source_repo, source_path"),
    ],
)
def test_a_bad_dev_index_row_is_named_not_counted_as_real(tmp_path: Path, row: str, message: str) -> None:
    dev = _index(tmp_path / "dev", "synthetic/real/a.jpg\treal\tcamera\tx/y\t0\ta.jpg\t0", row)
    with pytest.raises(InvalidRequest, match=f"INDEX.tsv:3: {message}"):
        read_dev_set(dev)


def test_an_empty_or_binary_dev_index_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="lists no items"):
        read_dev_set(_index(tmp_path / "empty"))
    (tmp_path / "binary").mkdir()
    (tmp_path / "binary" / "INDEX.tsv").write_bytes(HEADER.encode() + b"\n\xff\xfe\x00x\n")
    with pytest.raises(InvalidRequest, match="not UTF-8"):
        read_dev_set(tmp_path / "binary")


def test_a_label_list_that_is_not_utf8_is_a_typed_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_bytes(b"\xff\xfe\x00bad,1\n")
    code, err = _run(["evaluate", "--model", "meso4.df", "--csv", str(labels)], capsys)
    assert code == 2
    assert "is not UTF-8 text" in err


def test_a_one_model_metrics_file_is_strict_json(tmp_path: Path) -> None:
    """One class gives no AUC: the file says null, which every JSON parser reads (NaN is not JSON)."""
    from detector.evaluation.models import write_outputs

    write_outputs({"levels": {"video": {"auc": math.nan, "n": 3.0}}}, [], tmp_path)
    text = (tmp_path / "metrics.json").read_text(encoding="utf-8")
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))["levels"] == {
        "video": {"auc": None, "n": 3.0}
    }
