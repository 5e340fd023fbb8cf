"""Stage training data from public git repositories, pinned by commit and verified by sha256.

``datasets/sources.tsv`` names each source (repository, commit, include and exclude globs, kind,
licence); ``datasets/staged.lock.tsv`` lists every file to stage with its sha256, so a staging run
is byte-for-byte the one the shipped models trained on. Files of the development set
(``../shared/data/TRAINING-EXCLUDE.tsv``, by source path and by sha256) never enter the lock, and a
repository kept for independent evaluation (``datasets/reserved.txt``) is refused outright.

Snapshots come from a mirror folder (``--mirror DIR`` holding ``owner+name/repo`` or
``owner/name`` git directories) or, without one, from ``git clone`` of github.com at the commit.

    python -m datasets.staging lock --mirror DIR          # rebuild datasets/staged.lock.tsv
    python -m datasets.staging stage --mirror DIR --out runs/staged
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES_FILE = HERE / "sources.tsv"
LOCK_FILE = HERE / "staged.lock.tsv"
RESERVED_FILE = HERE / "reserved.txt"
DEV_EXCLUDE_FILE = HERE.parent.parent / "shared" / "data" / "TRAINING-EXCLUDE.tsv"


class StagingError(RuntimeError):
    """A source cannot be staged as pinned (missing commit, checksum mismatch, reserved repository)."""


class ReservedSource(StagingError):
    """The repository is kept for independent evaluation and must never be used for training."""


@dataclass(frozen=True)
class Source:
    """One row of ``sources.tsv``."""

    name: str
    repo: str
    commit: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    kind: str
    licence: str
    notes: str = ""

    def selects(self, path: str) -> bool:
        """Whether ``path`` matches an include glob and no exclude glob."""
        return any(fnmatch.fnmatchcase(path, g) for g in self.include) and not any(
            fnmatch.fnmatchcase(path, g) for g in self.exclude
        )


@dataclass(frozen=True)
class LockRow:
    """One staged file: source name, path in the repository, sha256, size in bytes."""

    name: str
    path: str
    sha256: str
    size: int


@dataclass
class DevExclusions:
    """Development-set files: ``(repo, source_path)`` pairs and the sha256 of every dev file."""

    paths: set[tuple[str, str]] = field(default_factory=set)
    sha256s: set[str] = field(default_factory=set)

    def blocks(self, repo: str, path: str, sha256: str) -> bool:
        """Whether this file is (or is byte-identical to) a development-set file."""
        return (repo, path) in self.paths or sha256 in self.sha256s


def _split(cell: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in cell.split(";") if p.strip())


def read_sources(path: Path = SOURCES_FILE) -> list[Source]:
    """The sources of ``sources.tsv``; names must be unique and no repository reserved."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    sources = [
        Source(
            r["name"],
            r["repo"],
            r["commit"],
            _split(r["include"]),
            _split(r["exclude"] or ""),
            r["kind"],
            r["licence"],
            r.get("notes") or "",
        )
        for r in rows
    ]
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise StagingError(f"{path}: duplicate source names")
    reserved = read_reserved()
    for source in sources:
        check_not_reserved(source.repo, reserved)
    return sources


def read_reserved(path: Path = RESERVED_FILE) -> list[str]:
    """Reserved repository patterns (``owner/name``, ``fnmatch`` globs allowed), lower case."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.strip().lower() for ln in lines if ln.strip() and not ln.startswith("#")]


def check_not_reserved(repo: str, reserved: Sequence[str] | None = None) -> None:
    """Raise :class:`ReservedSource` when ``repo`` is kept for independent evaluation."""
    patterns = read_reserved() if reserved is None else reserved
    hit = next((p for p in patterns if fnmatch.fnmatchcase(repo.lower(), p)), None)
    if hit is not None:
        raise ReservedSource(f"{repo} is reserved for independent evaluation ({hit}); it is never staged")


def read_lock(path: Path = LOCK_FILE) -> list[LockRow]:
    """The rows of ``staged.lock.tsv``."""
    with open(path, encoding="utf-8", newline="") as fh:
        return [
            LockRow(r["name"], r["path"], r["sha256"], int(r["size"]))
            for r in csv.DictReader(fh, delimiter="\t")
        ]


def write_lock(rows: Iterable[LockRow], path: Path = LOCK_FILE) -> None:
    """Write ``staged.lock.tsv`` sorted by source and path."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, delimiter="\t", lineterminator="\n")
        out.writerow(["name", "path", "sha256", "size"])
        for r in sorted(rows, key=lambda r: (r.name, r.path)):
            out.writerow([r.name, r.path, r.sha256, r.size])


def read_dev_exclusions(path: Path = DEV_EXCLUDE_FILE) -> DevExclusions:
    """The development set's source paths and sha256s (empty when the file is absent)."""
    found = DevExclusions()
    if not path.exists():
        return found
    with open(path, encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            found.paths.add((r["source_repo"], r["source_path"]))
            found.sha256s.add(r["dev_sha256"])
    return found


class Snapshot:
    """Read-only access to one repository at one commit through git plumbing."""

    def __init__(self, git_dir: Path, commit: str) -> None:
        self.git_dir, self.commit = git_dir, commit
        probe = self._git("cat-file", "-t", commit, check=False)
        if probe.returncode != 0 or probe.stdout.strip() != b"commit":
            raise StagingError(f"{git_dir}: commit {commit} is not present")

    def _git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), *args], capture_output=True, check=False
        )
        if check and done.returncode != 0:
            raise StagingError(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace').strip()}")
        return done

    def files(self) -> list[str]:
        """Every file path of the commit."""
        out = self._git("ls-tree", "-r", "-z", "--name-only", self.commit).stdout
        return [p.decode() for p in out.split(b"\0") if p]

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or ``None`` when the snapshot lacks its content (large files)."""
        done = self._git("cat-file", "blob", f"{self.commit}:{path}", check=False)
        return done.stdout if done.returncode == 0 else None


def open_snapshot(source: Source, mirror: Path | None, cache: Path) -> Snapshot:
    """The source's snapshot from ``mirror``, else a clone of github.com into ``cache``."""
    check_not_reserved(source.repo)
    owner, name = source.repo.split("/", 1)
    if mirror is not None:
        for candidate in (
            mirror / f"{owner}+{name}" / "repo",
            mirror / owner / name,
            mirror / f"{owner}+{name}",
        ):
            if candidate.exists():
                return Snapshot(candidate, source.commit)
        raise StagingError(f"{source.repo} is not in the mirror {mirror}")
    git_dir = cache / f"{owner}+{name}.git"
    if not git_dir.exists():
        url = f"https://github.com/{source.repo}.git"
        command = ["git", "clone", "--bare", "--quiet", url, str(git_dir)]
        quiet = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # a missing repository fails, never asks
        done = subprocess.run(command, capture_output=True, env=quiet)
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip()
            raise StagingError(f"cannot clone {url} ({reason}); without network give --mirror DIR")
    return Snapshot(git_dir, source.commit)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def build_lock(
    sources: Sequence[Source], mirror: Path | None, cache: Path, dev: DevExclusions
) -> tuple[list[LockRow], dict[str, int]]:
    """Lock rows for every selected file that is present and not a dev file; counts of what was dropped."""
    rows: list[LockRow] = []
    dropped = {"dev": 0, "absent": 0}
    for source in sources:
        snap = open_snapshot(source, mirror, cache)
        for path in sorted(p for p in snap.files() if source.selects(p)):
            data = snap.read(path)
            if data is None:
                dropped["absent"] += 1
                continue
            digest = sha256_bytes(data)
            if dev.blocks(source.repo, path, digest):
                dropped["dev"] += 1
                continue
            rows.append(LockRow(source.name, path, digest, len(data)))
    return rows, dropped


def staged_path(out: Path, row: LockRow) -> Path:
    """Where a lock row lands under ``out``: ``<source name>/<path in repository>``."""
    return out / row.name / row.path


@dataclass
class Staged:
    """What a staging run wrote: ``written`` files, of which ``replaced`` were staged copies whose
    sha256 no longer matched the lock (damaged or edited since), named so nobody trusts them twice."""

    written: int = 0
    replaced: list[Path] = field(default_factory=list)


def stage(
    rows: Sequence[LockRow],
    sources: Sequence[Source],
    mirror: Path | None,
    out: Path,
    dev: DevExclusions | None = None,
) -> Staged:
    """Write every lock row under ``out`` after checking its sha256.

    A file already staged with the right sha256 is kept and one with another is fetched again and
    named in ``replaced``; a snapshot file that differs from the lock raises :class:`StagingError`,
    as does a row that names a dev file or a source missing from ``sources``.
    """
    by_name = {s.name: s for s in sources}
    dev = dev or read_dev_exclusions()
    snaps: dict[str, Snapshot] = {}
    done = Staged()
    for row in rows:
        source = by_name.get(row.name)
        if source is None:
            raise StagingError(f"lock row {row.path} names unknown source {row.name!r}")
        if dev.blocks(source.repo, row.path, row.sha256):
            raise StagingError(f"{source.repo}:{row.path} is a development-set file; it is never staged")
        target = staged_path(out, row)
        damaged = target.exists()
        if damaged and sha256_bytes(target.read_bytes()) == row.sha256:
            continue
        if row.name not in snaps:
            snaps[row.name] = open_snapshot(source, mirror, out / ".git-cache")
        data = snaps[row.name].read(row.path)
        if data is None:
            raise StagingError(f"{source.repo}:{row.path} is missing from the snapshot")
        if sha256_bytes(data) != row.sha256:
            raise StagingError(f"{source.repo}:{row.path}: sha256 differs from the lock")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        done.written += 1
        if damaged:
            done.replaced.append(target)
            print(f"replaced {target}: its sha256 differed from the lock", file=sys.stderr, flush=True)
    return done


def main(argv: list[str] | None = None) -> int:
    """``lock`` rebuilds the lock file from the sources; ``stage`` stages and verifies every file."""
    parser = argparse.ArgumentParser(description="Stage pinned training data (sha256-verified).")
    parser.add_argument("command", choices=["lock", "stage"])
    parser.add_argument("--mirror", type=Path, default=None, help="folder of git snapshots")
    parser.add_argument("--out", type=Path, default=Path("runs/staged"))
    parser.add_argument(
        "--only", nargs="*", default=None, help="source names to lock or stage (lock keeps the others' rows)"
    )
    args = parser.parse_args(argv)
    sources = read_sources()
    try:
        if args.only:
            unknown = sorted(set(args.only) - {s.name for s in sources})
            if unknown:
                known = ", ".join(s.name for s in sources)
                raise StagingError(f"unknown source(s) {unknown}; known: {known}")
            sources = [s for s in sources if s.name in set(args.only)]
        if args.command == "lock":
            rows, dropped = build_lock(sources, args.mirror, args.out / ".git-cache", read_dev_exclusions())
            chosen = {s.name for s in sources}
            kept = [r for r in read_lock(LOCK_FILE) if r.name not in chosen] if args.only else []
            write_lock([*kept, *rows], LOCK_FILE)  # --only relocks those sources; the rest's rows stay
            print(f"{len(rows)} files locked; dropped {dropped['dev']} dev files, {dropped['absent']} absent")
            return 0
        wanted = {s.name for s in sources}
        rows = [r for r in read_lock(LOCK_FILE) if r.name in wanted]
        done = stage(rows, sources, args.mirror, args.out)
        again = f", {len(done.replaced)} of them replacing damaged copies" if done.replaced else ""
        print(f"{len(rows)} files verified under {args.out} ({done.written} written{again})")
    except StagingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
