"""The soak run finds a Serve replica by its process title, busy or idle (``scripts/soak``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from scripts.soak.service import group_of, kill_replica

TITLES = {
    "ray::ServeReplica:trueframe:faces": "replica:faces",
    "ray::ServeReplica:trueframe:faces.handle_request_with_rejection": "replica:faces",
    "ray::ServeReplica:trueframe:synthetic_model.check_health": "replica:synthetic_model",
    "ray::ServeController.listen_for_change": "serve_controller",
    "ray::ProxyActor": "serve_proxy",
    "ray::IDLE": "ray_workers_other",
    "/work/.venv/bin/gcs_server --log_dir=/tmp": "ray_system",
}


@pytest.mark.parametrize(("title", "group"), TITLES.items())
def test_process_titles_map_to_their_group(title: str, group: str) -> None:
    """A replica running a call is titled with the method too (seen under load): still that replica."""
    assert group_of(title) == group


def test_kill_replica_kills_a_busy_replica_of_the_tree_only() -> None:
    """A child titled as a busy ``faces`` replica (argv[0], what /proc's cmdline shows) is killed."""
    title = "ray::ServeReplica:trueframe:faces.handle_request_with_rejection"
    code = "import time; time.sleep(60)"
    child = subprocess.Popen([title, "-c", code], executable=sys.executable)
    try:
        assert kill_replica(os.getpid(), "face_model") is None
        assert kill_replica(os.getpid(), "faces") == child.pid
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
