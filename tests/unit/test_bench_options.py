"""``python -m scripts.bench`` refuses bad options and environment before any section runs (a
walkthrough saw `--only models,bogus` run the models first, a bad ``BENCH_SCAN_SIZE`` end in a
traceback after the sections before it, and an unwritable ``--out`` lose the whole table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.bench import __main__ as bench
from scripts.bench.sections import scan_sizes


@pytest.fixture
def no_section_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def ran(*args: object) -> list[tuple[str, str, str]]:
        raise AssertionError("a section ran before the options were checked")

    monkeypatch.setattr(bench, "SECTIONS", dict.fromkeys(bench.SECTIONS, ran))


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--only", "models,bogus"], {}, "--only takes peer, "),
        (["--only", ""], {}, "not nothing"),
        (["--only", "scan"], {"BENCH_SCAN_SIZE": "abc"}, "BENCH_SCAN_SIZE is images,videos"),
        (["--only", "scan"], {"BENCH_SCAN_SIZE": "-3,1"}, "BENCH_SCAN_SIZE is images,videos"),
        (["--only", "scan"], {"BENCH_SCAN_SIZE": "0,0"}, "not both 0"),
        (["--only", "scan"], {"BENCH_SCAN_ROUNDS": "0"}, "BENCH_SCAN_ROUNDS is a whole number of at least 1"),
        (["--only", "models", "--out", "/dev/null/bench.md"], {}, "--out's folder"),
    ],
)
def test_bad_options_are_refused_before_any_section(
    no_section_runs: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as stopped:
        bench.main(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_the_table_is_printed_before_it_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "SECTIONS", {"models": lambda tmp, settings: [("models", "case", "1 x/s")]})
    out = tmp_path / "bench.md"
    assert bench.main(["--only", " models ", "--out", str(out)]) == 0  # spaces around names are fine
    assert "| models | case | 1 x/s |" in capsys.readouterr().out
    assert "| models | case | 1 x/s |" in out.read_text()


def test_scan_sizes_default_and_parse() -> None:
    assert scan_sizes({}) == (200, 20, 2)
    assert scan_sizes({"BENCH_SCAN_SIZE": "40,4", "BENCH_SCAN_ROUNDS": "1"}) == (40, 4, 1)


def test_the_http_section_reports_the_mean_batch_of_each_stage_over_its_block_only() -> None:
    """The counters are cumulative over the service's life: a block's passes are after minus before."""
    from scripts.bench.sections import _batch_row

    before = {"faces": (10.0, 12.0), "face_model": (4.0, 4.0), "synthetic_model": (0.0, 0.0)}
    after = {"faces": (14.0, 40.0), "face_model": (4.0, 4.0), "synthetic_model": (5.0, 32.0)}
    section, case, result = _batch_row(16, 32, before, after)
    assert (section, case) == ("http", "mean batch, HTTP concurrency 16, 32 images")
    assert result == "face_model -; faces 7.00 (28 in 4); synthetic_model 6.40 (32 in 5)"
