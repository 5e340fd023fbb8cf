"""Regressions of "Hold under attack and faults": Ray start-up and the command line (no torch, no
Ray cluster, no model).

Ray start-up retries and their one-line error, JSON errors from ``analyze --json``, paths that are
not regular files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.hold import small_photo


@pytest.fixture(scope="module")
def image() -> bytes:
    return small_photo()


# -- 8: Ray start-up, command-line JSON errors ---------------------------------------------------------


def test_ray_start_is_retried_then_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    from serving.ray import runtime

    attempts: list[dict[str, Any]] = []

    def failing_init(**kwargs: Any) -> None:
        attempts.append(kwargs)
        raise TimeoutError("Timed out waiting for the GCS\nwith a second line")

    slept: list[float] = []
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", failing_init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.setattr(runtime.time, "sleep", slept.append)
    with pytest.raises(runtime.RayStartError) as raised:
        runtime.init_ray(num_cpus=1)
    assert len(attempts) == runtime.START_ATTEMPTS
    assert slept == sorted(slept)
    assert len(slept) == runtime.START_ATTEMPTS - 1
    assert "\n" not in str(raised.value)
    assert raised.value.code == "ray_start_failed"


def test_a_ray_address_nobody_answers_on_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ray.init`` retried an unreachable ``RAY_ADDRESS`` for ever (10 minutes and counting)."""
    import socket

    import ray

    from serving.ray import runtime

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    called: list[dict[str, Any]] = []
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: called.append(kwargs))
    with pytest.raises(
        runtime.RayStartError, match=f"no Ray cluster answers at RAY_ADDRESS=127.0.0.1:{port}"
    ):
        runtime.init_ray()
    assert called == []
    runtime.check_cluster_address("auto")  # left to Ray
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        runtime.check_cluster_address(f"ray://127.0.0.1:{listening.getsockname()[1]}")


def test_serve_prints_one_line_when_ray_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.cli import main
    from serving.ray import app as ray_app
    from serving.ray import runtime

    def no_ray(num_cpus: int | None = None) -> bool:
        raise runtime.RayStartError("Ray did not start after 3 attempts: Timed out")

    monkeypatch.setattr(runtime, "init_ray", no_ray)
    monkeypatch.setattr(ray_app, "stop_service", lambda: None)
    assert main(["serve", "--data-dir", str(tmp_path / "data"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: ray_start_failed: Ray did not start after 3 attempts: Timed out"
    assert not any("Traceback" in line for line in err)


@pytest.fixture
def not_files(tmp_path: Path) -> list[Path]:
    """A FIFO without a writer, a link to /dev/zero, a folder, /dev/null."""
    import os

    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "folder").mkdir()
    return [tmp_path / "fifo", tmp_path / "zero", tmp_path / "folder", Path("/dev/null")]


@pytest.mark.timeout(60)
def test_paths_that_are_not_regular_files_are_never_read(not_files: list[Path]) -> None:
    """``trueframe provenance`` on a FIFO used to block forever, on /dev/zero to read without end."""
    from detector.errors import InvalidRequest
    from detector.media.files import read_regular_file
    from detector.media.loader import MediaLoader

    for path in not_files:
        with pytest.raises(InvalidRequest, match="not a regular file"):
            MediaLoader().load(path)
        with pytest.raises(InvalidRequest, match="not a regular file"):
            read_regular_file(path, 1000)


@pytest.mark.timeout(60)
def test_provenance_cli_refuses_paths_that_are_not_regular_files(
    not_files: list[Path], tmp_path: Path, image: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.cli import main

    big = tmp_path / "big.jpg"
    big.write_bytes(image)
    with big.open("r+b") as fh:
        fh.truncate(300_000_000)  # sparse: over every byte limit, never read
    fine = tmp_path / "fine.jpg"
    fine.write_bytes(image)
    assert main(["provenance", "--json", *map(str, [*not_files, big, fine])]) == 2
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("error", {}).get("code") for line in lines] == [
        *["source_unreadable"] * len(not_files),
        "media_too_large",
        None,
    ]
    assert lines[-1]["provenance"]["state"] == "absent"


@pytest.mark.parametrize("frames", ["0", "513"])
def test_analyze_json_with_frames_out_of_range_prints_a_json_error_line(
    tmp_path: Path, image: bytes, capsys: pytest.CaptureFixture[str], frames: str
) -> None:
    from serving.cli import main

    path = tmp_path / "a.jpg"
    path.write_bytes(image)
    assert main(["analyze", "--json", "--frames", frames, str(path)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    error = json.loads(out[0])["error"]
    assert error["code"] == "invalid_request"
    assert "between 1 and 512" in error["message"]


def test_scan_refuses_more_frames_than_http_before_anything_starts(
    tmp_path: Path, image: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.cli import main

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.jpg").write_bytes(image)
    out = tmp_path / "rows.jsonl"
    assert main(["scan", str(tmp_path / "src"), "--out", str(out), "--frames", "513", "--no-progress"]) == 2
    assert "invalid_request: --frames must be between 1 and 512" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("frames", "valid"), [(None, True), (1, True), (512, True), (0, False), (513, False)]
)
def test_options_take_the_frame_counts_http_takes(frames: int | None, valid: bool) -> None:
    from detector.errors import InvalidRequest
    from detector.stages import Options

    if valid:
        assert Options(frames).frames == frames
    else:
        with pytest.raises(InvalidRequest, match="between 1 and 512"):
            Options(frames)
