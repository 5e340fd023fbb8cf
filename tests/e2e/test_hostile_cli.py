"""The hostile-input suite through the command line: every case of ``tests.support.hostile.CASES`` in ONE
``trueframe analyze --json`` process (the shipped models, default settings, 4 frames per video), then
the same files in one ``trueframe provenance --json`` process.

Each file must give one JSON line, a report (a provenance card) or ``{"file", "error": {"code",
"message"}}`` with an expected code; the process must not print a traceback, must not hang (a
timeout names the file it was stuck on), and must leave nothing in its temp dir or next to the
inputs. Paths that are not regular files (a folder, a FIFO, a link to ``/dev/zero``, ``/dev/null``,
a missing file) ride in the same batches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest

from detector.provenance.types import ProvenanceState
from tests.support.hostile import CASE_IDS, CASES, REPORT, Case, check_report, leftovers

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BATCH_TIMEOUT_S = 480
SPECIAL_PATHS = ("a folder", "a fifo", "link to dev zero", "missing.jpg", "dev null")


@dataclass
class Inputs:
    """Every case written to disk once (and the special paths), for every command of this module."""

    paths: dict[str, Path]  # case name (or special path) -> path
    folder: Path
    listed: list[str]


@dataclass
class Batch:
    answers: dict[str, dict[str, Any]]  # case name (or special path) -> its JSON line
    stderr: str
    returncode: int
    scratch: Path


def disk_name(case: Case) -> str:
    """The case's file name on disk: the hostile name itself when a file system can hold it."""
    name = case.sent_name
    if "/" in name or "\0" in name or len(name.encode()) > 200 or not name.strip("."):
        return case.name
    return name


def _specials(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    (folder / "a folder").mkdir()
    os.mkfifo(folder / "a fifo")  # never opened: opening a FIFO without a writer would block
    (folder / "link to dev zero").symlink_to("/dev/zero")
    return {
        "a folder": folder / "a folder",
        "a fifo": folder / "a fifo",
        "link to dev zero": folder / "link to dev zero",
        "missing.jpg": folder / "missing.jpg",
        "dev null": Path("/dev/null"),
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    root = tmp_path_factory.mktemp("hostile-cli")
    folder, work = root / "in", root / "work"
    folder.mkdir()
    work.mkdir()
    paths = {case.name: folder / disk_name(case) for case in CASES}
    for case in CASES:
        paths[case.name].write_bytes(case.make(work))
    listed = sorted(p.name for p in folder.iterdir())
    paths.update(_specials(root / "special"))
    return Inputs(paths, folder, listed)


def run_batch(command: list[str], inputs: Inputs, scratch: Path) -> Batch:
    """``trueframe <command> --json`` over every input in one process, its temp dir ``scratch``."""
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUEFRAME_")}
    env.update(TMPDIR=str(scratch), PYTHONUNBUFFERED="1")
    argv = [sys.executable, "-m", "serving.cli", *command, *map(str, inputs.paths.values())]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=BATCH_TIMEOUT_S, env=env, cwd=ROOT
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stuck = list(inputs.paths)[len([line for line in out.splitlines() if line.startswith("{")])]
        pytest.fail(f"trueframe {command[0]} hung for {BATCH_TIMEOUT_S} s, on {stuck}")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(inputs.paths), (
        f"{len(lines)} lines for {len(inputs.paths)} files:\n{done.stderr[-3000:]}"
    )
    return Batch(dict(zip(inputs.paths, lines, strict=True)), done.stderr, done.returncode, scratch)


@pytest.fixture(scope="module")
def batch(inputs: Inputs, tmp_path_factory: pytest.TempPathFactory) -> Batch:
    return run_batch(["analyze", "--json", "--frames", "4"], inputs, tmp_path_factory.mktemp("x") / "tmp")


@pytest.mark.timeout(BATCH_TIMEOUT_S + 120)  # the first case pays for the batch
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_each_hostile_file_gets_a_report_or_a_typed_error(batch: Batch, inputs: Inputs, case: Case) -> None:
    answer = batch.answers[case.name]
    if "error" in answer:
        assert set(answer) == {"file", "error"}
        assert answer["file"] == str(inputs.paths[case.name])
        code = answer["error"]["code"]
        assert code in case.expect, (
            f"got {code} ({answer['error']['message']}), expected {sorted(case.expect)}"
        )
    else:
        assert REPORT in case.expect, f"got a report, expected one of {sorted(case.expect)}"
        check_report(case, answer, disk_name(case))


@pytest.mark.parametrize("special", SPECIAL_PATHS)
def test_paths_that_are_not_regular_files_are_refused(batch: Batch, inputs: Inputs, special: str) -> None:
    answer = batch.answers[special]
    assert answer["file"] == str(inputs.paths[special])
    assert answer["error"]["code"] == "source_unreadable", answer


def test_the_batch_printed_no_traceback_and_left_no_file(batch: Batch, inputs: Inputs) -> None:
    assert "Traceback" not in batch.stderr, batch.stderr[-3000:]
    assert batch.returncode == 2  # some files failed, the others still ran
    assert leftovers(batch.scratch) == []
    assert sorted(p.name for p in inputs.folder.iterdir()) == inputs.listed


STATES = set(get_args(ProvenanceState))


@pytest.mark.timeout(BATCH_TIMEOUT_S + 60)
def test_provenance_cards_for_every_hostile_file(inputs: Inputs, tmp_path: Path) -> None:
    """``trueframe provenance --json`` over the same files: a card (or a typed error) for each."""
    cards = run_batch(["provenance", "--json"], inputs, tmp_path / "tmp")
    assert "Traceback" not in cards.stderr, cards.stderr[-3000:]
    assert cards.returncode in (0, 2)
    assert leftovers(cards.scratch) == []
    for name, answer in cards.answers.items():
        assert answer["file"] == str(inputs.paths[name])
        if "error" in answer:
            assert name in SPECIAL_PATHS, answer
            assert answer["error"]["code"] == "source_unreadable", answer
        else:
            assert answer["provenance"]["state"] in STATES, (name, answer)
    assert cards.answers["meta_c2pa_signature_flipped.jpg"]["provenance"]["state"] == "invalid"
