"""Training-data staging: pinned commits, sha256 verified per file, reserved repositories refused,
development-set files never staged."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from datasets.staging import (
    DevExclusions,
    LockRow,
    ReservedSource,
    Source,
    StagingError,
    build_lock,
    check_not_reserved,
    read_lock,
    read_sources,
    sha256_bytes,
    stage,
)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, str]:
    """A mirror folder holding ``owner+name/repo`` with three files committed once."""
    work = tmp_path / "work"
    (work / "img").mkdir(parents=True)
    (work / "img" / "a.jpg").write_bytes(b"photo a")
    (work / "img" / "b.jpg").write_bytes(b"photo b")
    (work / "notes.txt").write_text("not media")
    _git(work, "init", "-q")
    _git(work, "add", ".")
    _git(work, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "data")
    commit = _git(work, "rev-parse", "HEAD")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(work), str(mirror / "owner+name" / "repo")], check=True
    )
    return mirror, commit


def _source(commit: str, exclude: tuple[str, ...] = ()) -> Source:
    return Source("toy", "owner/name", commit, ("img/*.jpg",), exclude, "real_photo", "MIT")


def test_lock_selects_by_glob_and_drops_dev_files(mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, commit = mirror
    rows, dropped = build_lock([_source(commit)], root, tmp_path, DevExclusions())
    assert [r.path for r in rows] == ["img/a.jpg", "img/b.jpg"]
    assert rows[0].sha256 == sha256_bytes(b"photo a")
    dev = DevExclusions(paths={("owner/name", "img/a.jpg")}, sha256s={sha256_bytes(b"photo b")})
    rows, dropped = build_lock([_source(commit)], root, tmp_path, dev)
    assert rows == []
    assert dropped["dev"] == 2
    rows, _ = build_lock([_source(commit, exclude=("img/b*",))], root, tmp_path, DevExclusions())
    assert [r.path for r in rows] == ["img/a.jpg"]


def test_stage_writes_verified_files_and_refuses_a_mismatch(mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, commit = mirror
    source = _source(commit)
    rows, _ = build_lock([source], root, tmp_path, DevExclusions())
    out = tmp_path / "staged"
    assert stage(rows, [source], root, out, DevExclusions()).written == 2
    assert (out / "toy" / "img" / "a.jpg").read_bytes() == b"photo a"
    assert stage(rows, [source], root, out, DevExclusions()).written == 0, "verified files are kept"
    bad = [LockRow("toy", "img/a.jpg", "0" * 64, 7)]
    with pytest.raises(StagingError, match="sha256"):
        stage(bad, [source], root, tmp_path / "other", DevExclusions())


def test_a_damaged_staged_file_is_fetched_again_and_named(
    mirror: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, commit = mirror
    source = _source(commit)
    rows, _ = build_lock([source], root, tmp_path, DevExclusions())
    out = tmp_path / "staged"
    assert stage(rows, [source], root, out, DevExclusions()).replaced == []
    damaged = out / "toy" / "img" / "b.jpg"
    damaged.write_bytes(b"photo b, truncated")
    done = stage(rows, [source], root, out, DevExclusions())
    assert (done.written, done.replaced) == (1, [damaged])
    assert damaged.read_bytes() == b"photo b"
    assert f"replaced {damaged}" in capsys.readouterr().err


def test_stage_refuses_dev_files_and_missing_commits(mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, commit = mirror
    source = _source(commit)
    rows, _ = build_lock([source], root, tmp_path, DevExclusions())
    dev = DevExclusions(paths={("owner/name", "img/b.jpg")})
    with pytest.raises(StagingError, match="development-set"):
        stage(rows, [source], root, tmp_path / "out", dev)
    with pytest.raises(StagingError, match="not present"):
        stage(rows, [_source("1" * 40)], root, tmp_path / "out2", DevExclusions())


@pytest.mark.parametrize(
    "repo",
    [
        "NVlabs/stylegan2",
        "nvlabs/StyleGAN2",
        "a312863063/seeprettyface-dataset",
        "ai-forever/ghost",
        "someone/Urban100",
    ],
)
def test_reserved_repositories_are_refused(repo: str, tmp_path: Path) -> None:
    with pytest.raises(ReservedSource):
        check_not_reserved(repo)
    with pytest.raises(ReservedSource):
        build_lock(
            [Source("x", repo, "0" * 40, ("*",), (), "fake_image", "")], None, tmp_path, DevExclusions()
        )


def test_project_sources_and_lock_agree() -> None:
    """Every lock row names a listed source, sits under its include globs, and no source is reserved."""
    sources = {s.name: s for s in read_sources()}
    rows = read_lock()
    assert len(rows) > 20000
    for row in rows:
        assert sources[row.name].selects(row.path), row
        assert len(row.sha256) == 64


def test_lock_holds_no_dev_file(shared_data: Path) -> None:
    from datasets.staging import read_dev_exclusions

    dev = read_dev_exclusions(shared_data / "TRAINING-EXCLUDE.tsv")
    assert len(dev.paths) > 300
    repos = {s.name: s.repo for s in read_sources()}
    assert not [r for r in read_lock() if dev.blocks(repos[r.name], r.path, r.sha256)]


@pytest.fixture
def own_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mirror: tuple[Path, str]) -> Path:
    """The command line on a lock file of its own: sources ``toy`` (the mirror) and ``other``."""
    from datasets import staging

    _root, commit = mirror
    other = Source("other", "someone/else", "0" * 40, ("*.jpg",), (), "real_photo", "MIT")
    lock = tmp_path / "staged.lock.tsv"
    staging.write_lock([LockRow("other", "x.jpg", "ab" * 32, 3)], lock)
    monkeypatch.setattr(staging, "LOCK_FILE", lock)
    monkeypatch.setattr(staging, "read_sources", lambda: [_source(commit), other])
    monkeypatch.setattr(staging, "read_dev_exclusions", DevExclusions)
    return lock


def test_lock_only_relocks_the_named_sources_and_keeps_the_others(
    own_lock: Path, mirror: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: `lock --only NAME` rewrote the committed lock with that source's rows alone (27,079
    rows gone), and a misspelt name left the header only, both with exit 0."""
    from datasets.staging import main

    root, _commit = mirror
    assert main(["lock", "--only", "toy", "--mirror", str(root), "--out", str(tmp_path / "s")]) == 0
    assert sorted((r.name, r.path) for r in read_lock(own_lock)) == [
        ("other", "x.jpg"), ("toy", "img/a.jpg"), ("toy", "img/b.jpg"),
    ]  # fmt: skip
    before = own_lock.read_text()
    assert main(["lock", "--only", "toy", "bogus"]) == 2
    assert "error: unknown source(s) ['bogus']; known: toy, other" in capsys.readouterr().err
    assert own_lock.read_text() == before


def test_staging_without_network_or_mirror_is_one_error_line(
    own_lock: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasets.staging import main

    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")  # no network here; never reach the real GitHub either
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "url.file:///nonexistent/.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "https://github.com/")
    assert main(["stage", "--only", "other", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot clone https://github.com/someone/else.git (")
    assert err.rstrip().endswith("without network give --mirror DIR")
