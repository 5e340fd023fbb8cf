"""A command whose reader closes stdout early (``trueframe ... | head``) ends quietly, exit 141."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_stdout_ends_the_command_without_a_traceback() -> None:
    code = "import sys; from serving.cli import main; sys.exit(main(['schema']))"
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    child.stdout.close()  # the reader is gone before the command prints (`| head -c 0`)
    _, err = child.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert "BrokenPipeError" not in err
    assert child.returncode == 141
