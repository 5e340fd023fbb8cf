"""A command whose reader closes stdout early (``trueframe ... | head``) ends quietly, exit 141."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TEXT_FILE = str(Path(__file__).resolve().parents[2] / "pyproject.toml")


@pytest.mark.parametrize(
    ("command", "buffered"),
    [
        (["schema"], False),  # large output: the pipe breaks inside print
        # small output left in Python's buffer (stdout to a pipe, PYTHONUNBUFFERED unset): it met the
        # closed reader at interpreter exit, outside main, and exited 120 with "Exception ignored"
        (["provenance", "--json", TEXT_FILE], True),
    ],
)
def test_a_closed_stdout_ends_the_command_without_a_traceback(command: list[str], buffered: bool) -> None:
    code = f"import sys; from serving.cli import main; sys.exit(main({command!r}))"
    env = {k: v for k, v in os.environ.items() if not (buffered and k == "PYTHONUNBUFFERED")}
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    child.stdout.close()  # the reader is gone before the command prints (`| head -c 0`)
    _, err = child.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert "BrokenPipeError" not in err, err
    assert child.returncode == 141
