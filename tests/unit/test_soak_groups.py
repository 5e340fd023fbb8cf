"""The soak run finds a Serve replica by its process title, busy or idle (``scripts/soak``)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.soak.service import group_of, kill_replica

TITLES = {
    "ray::ServeReplica:trueframe:faces": "replica:faces",
    "ray::ServeReplica:trueframe:faces.handle_request_with_rejection": "replica:faces",
    "ray::ServeReplica:trueframe:synthetic_model.check_health": "replica:synthetic_model",
    "ray::ServeController.listen_for_change": "serve_controller",
    "ray::ProxyActor": "serve_proxy",
    "ray::IDLE": "ray_workers_other",
    "gcs_server --log_dir=session/logs": "ray_system",
}


@pytest.mark.parametrize(("title", "group"), TITLES.items())
def test_process_titles_map_to_their_group(title: str, group: str) -> None:
    """A replica running a call is titled with the method too (seen under load): still that replica."""
    assert group_of(title) == group


def test_kill_replica_finds_a_busy_replica_by_its_deployment() -> None:
    """A process titled as a busy ``faces`` replica (argv[0], what /proc's cmdline shows) is killed.

    It runs under a parent of its own, the root searched, so that no real replica of another
    test's service (below this test process) is ever touched.
    """
    title = "ray::ServeReplica:trueframe:faces.handle_request_with_rejection"
    spawn = (
        "import subprocess, sys, time; "
        f"c = subprocess.Popen([{title!r}, '-c', 'import time; time.sleep(60)'], executable=sys.executable); "
        "print(c.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", spawn], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert kill_replica(parent.pid, "face_model") is None
        assert kill_replica(parent.pid, "faces") == child
        assert _gone(child, timeout_s=10.0)
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def _gone(pid: int, timeout_s: float) -> bool:
    """The process exited (a zombie its sleeping parent has not reaped counts as exited)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat[stat.rindex(")") + 2] == "Z":
            return True
        time.sleep(0.05)
    return False
