"""``trueframe scan``'s option checks, made before any analysis (no Ray, no model runs): the
review-queue file and ``--verdict``. Regressions of a walkthrough: ``--review-out`` naming RESULTS
replaced the results with the queue; a bad ``--review-out`` was found after the whole scan, under
``--out``'s name; ``--verdict ''`` emptied the queue without a word."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.cli.scan import main


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.txt").write_text("not media\n")
    return src


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_queue_file_that_is_the_results_or_their_journal_is_refused_and_nothing_is_lost(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    out = tmp_path / f"r{suffix}"
    journal = out if suffix == ".jsonl" else out.with_name(out.name + ".journal.jsonl")
    rows = "".join(json.dumps({"path": f"/x/{i}.jpg", "sha256": "ab" * 32}) + "\n" for i in range(5))
    journal.write_text(rows)
    for queue in {out, journal}:
        err = _refused([str(folder), "--out", str(out), "--review-out", str(queue)], capsys)
        assert "error: invalid_request: --review-out must differ from --out and its journal" in err
        assert journal.read_text() == rows


def test_a_bad_queue_file_is_refused_before_the_scan_under_its_own_name(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import serving.scan.run as run

    def no_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("the scan ran before the options were checked")

    monkeypatch.setattr(run, "scan_items", no_scan)
    out = str(tmp_path / "r.jsonl")
    err = _refused([str(folder), "--out", out, "--review-out", str(tmp_path / "q.txt")], capsys)
    assert "error: invalid_request: --review-out must end in .jsonl, .csv or .parquet, not 'q.txt'" in err
    (tmp_path / "queue.jsonl").mkdir()
    err = _refused([str(folder), "--out", out, "--review-out", str(tmp_path / "queue.jsonl")], capsys)
    assert "is a folder: give a file name" in err
    blocked = tmp_path / "file"
    blocked.write_text("")
    err = _refused([str(folder), "--out", out, "--review-out", str(blocked / "q.jsonl")], capsys)
    assert "--review-out's folder" in err


@pytest.mark.parametrize("verdicts", [[""], [" , "], ["", ""]])
def test_a_verdict_filter_naming_no_verdict_is_refused(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], verdicts: list[str]
) -> None:
    argv = [str(folder), "--out", str(tmp_path / "r.jsonl"), "--review-out", str(tmp_path / "q.jsonl")]
    err = _refused([*argv, *[f"--verdict={v}" for v in verdicts]], capsys)
    assert "error: invalid_request: --verdict needs at least one verdict of: " in err
