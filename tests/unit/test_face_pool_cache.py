"""The face-pool cache: a pool records how many frames per clip it sampled, and a run that asks for
another count builds the pool again instead of training on the old frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import datasets.face_pool as face_pool
from datasets.face_pool import FacePool, cached_pool, clip_frames


def _pool(sources: list[str], frames: int | None) -> FacePool:
    n = len(sources)
    return FacePool(
        np.zeros((n, 8, 8, 3), np.uint8),
        np.zeros((n, 68, 2), np.float32),
        np.zeros(n, np.uint8),
        [f"g/{i}" for i in range(n)],
        [""] * n,
        sources,
        2.0,
        frames,
    )


def _counting_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace MTCNN + dlib by a builder that samples ``frames_per_clip`` frames of one clip."""
    builds: list[int] = []

    def build(name: str, kind: str, root: Path, frames_per_clip: int, size: int) -> FacePool:
        builds.append(frames_per_clip)
        return _pool([f"{root}/a.mp4#{i}" for i in range(frames_per_clip)], frames_per_clip)

    monkeypatch.setattr(face_pool, "_build_pool", build)
    return builds


def test_a_changed_frames_per_clip_builds_the_pool_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = _counting_builds(monkeypatch)
    (tmp_path / "staged" / "clips").mkdir(parents=True)
    args = ("clips", "real_face_video", tmp_path / "staged" / "clips", tmp_path / "pools")
    assert len(cached_pool(*args, 4, 64)) == 4
    assert len(cached_pool(*args, 4, 64)) == 4  # read from the cache
    assert builds == [4]
    again = cached_pool(*args, 6, 64)
    assert (len(again), again.frames_per_clip, builds) == (6, 6, [4, 6])
    assert FacePool.load(tmp_path / "pools" / "clips_64.npz").frames_per_clip == 6


def test_a_pool_of_stills_is_reused_at_any_frame_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = _counting_builds(monkeypatch)
    _pool(["/s/a.jpg", "/s/b.png"], None).save(tmp_path / "stills_64.npz")
    assert len(cached_pool("stills", "real_face", tmp_path / "missing", tmp_path, 16, 64)) == 2
    assert builds == []


def test_an_older_pool_gets_its_count_from_its_sources(tmp_path: Path) -> None:
    """Pools saved before the count was recorded: the highest ``#i`` of a clip frame tells it."""
    path = tmp_path / "old_64.npz"
    _pool(["/v/a.mp4#0", "/v/a.mp4#7", "/v/b.mp4#3", "/s/c.jpg"], None).save(path)
    with np.load(path) as d:
        np.savez_compressed(path, **{k: d[k] for k in d.files if k != "frames_per_clip"})
    assert FacePool.load(path).frames_per_clip == 8
    assert clip_frames(["/s/x#y.jpg", "/s/c.jpg"]) is None


def test_an_older_pool_is_kept_with_a_warning_not_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its inferred count is only a lower bound (short clips, no face in the last frames): building
    it again on a guess could cost hours, or stop a run whose source is pooled but not staged."""
    builds = _counting_builds(monkeypatch)
    path = tmp_path / "old_64.npz"
    _pool(["/v/a.mp4#0", "/v/a.mp4#5"], None).save(path)
    with np.load(path) as d:
        np.savez_compressed(path, **{k: d[k] for k in d.files if k != "frames_per_clip"})
    assert len(cached_pool("old", "real_face_video", tmp_path / "missing", tmp_path, 32, 64)) == 2
    assert builds == []
    assert "predates recorded frame counts" in capsys.readouterr().err


def test_a_stale_pool_whose_source_is_gone_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = _counting_builds(monkeypatch)
    _pool(["/v/a.mp4#0", "/v/a.mp4#1"], 2).save(tmp_path / "clips_64.npz")
    with pytest.raises(SystemExit, match=r"2 frames per clip, 32 asked.*not staged"):
        cached_pool("clips", "real_face_video", tmp_path / "missing", tmp_path, 32, 64)
    assert builds == []
