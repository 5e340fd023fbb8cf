"""The service under soak: ``trueframe serve`` in a child process, its process tree and memory."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        tree[ppid].append(int(entry.name))
    return tree


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def role(pid: int, root: int) -> str:
    """The process group a process belongs to, from its title."""
    return "service" if pid == root else group_of(_cmdline(pid))


def group_of(title: str) -> str:
    """The process group of a Ray process title. A replica running a call is titled
    ``ray::ServeReplica:APP:DEPLOYMENT.METHOD`` (e.g. ``faces.handle_request_with_rejection``), an
    idle one without the method: both are ``replica:DEPLOYMENT``."""
    if match := re.match(r"ray::ServeReplica:[^:\s]+:([^\s.]+)", title):
        return f"replica:{match.group(1)}"
    if title.startswith("ray::ServeController"):
        return "serve_controller"
    if title.startswith("ray::ProxyActor"):
        return "serve_proxy"
    if title.startswith("ray::"):  # IDLE workers and other Ray tasks
        return "ray_workers_other"
    return "ray_system"  # gcs_server, raylet, log monitor, agents


def rss_by_group(root: int) -> dict[str, int]:
    groups: Counter[str] = Counter()
    for pid in descendants(root):
        groups[role(pid, root)] += _rss_kb(pid)
    return dict(groups)


def kill_replica(root: int, deployment: str) -> int | None:
    """SIGKILL one replica process of this service (never anything outside its process tree)."""
    for pid in descendants(root):
        if role(pid, root) == f"replica:{deployment}":
            os.kill(pid, signal.SIGKILL)
            return pid
    return None


# -- the service ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """``trueframe serve`` in a child process (its own process group) on a data folder."""

    def __init__(self, data_dir: Path, no_ray: bool, log: Path) -> None:
        self.data_dir, self.no_ray, self.log = data_dir, no_ray, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 600.0) -> float:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        argv = [sys.executable, "-m", "serving.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--data-dir", str(self.data_dir)] + (["--no-ray"] if self.no_ray else [])
        started = time.perf_counter()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the service exited with {self.proc.returncode}; see {self.log}")
                try:
                    if client.get("/readyz").status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the service was not ready in {timeout_s:g} s; see {self.log}")
                time.sleep(1.0)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 120.0) -> float:
        """SIGINT (Ctrl-C), then wait; SIGKILL only if it does not exit in time."""
        assert self.proc is not None
        started = time.perf_counter()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            for pid in reversed(descendants(self.proc.pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.wait(30)
        return time.perf_counter() - started


def create_key(data_dir: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "serving.cli", "keys", "--data-dir", str(data_dir), "create", "--name", "soak",
         "--role", "admin"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    match = re.search(r"tfk_[A-Za-z0-9_-]+", out)
    if match is None:
        raise RuntimeError(f"no key in the output of trueframe keys create: {out}")
    return match.group(0)
