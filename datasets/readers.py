"""Dataset readers: labelled media lists from folder layouts and CSV files.

Every reader returns :class:`Sample` records (path, label with 1 = fake, optional group for the
bias audit) sorted by path, so evaluation is reproducible. Supported layouts:

* a plain folder of real media (:func:`read_folder`, every file label 0), or one with ``real/``
  and ``fake/`` sub-folders (:func:`read_real_fake`; the fake folder name is configurable, e.g.
  ``df``; the first sub-folder under each becomes the group);
* a CSV ``path,label[,group]`` (:func:`read_csv`; label ``0/1`` or ``real/fake``, header optional,
  relative paths resolved against the CSV's folder);
* FaceForensics++ (:func:`read_faceforensics`): ``original_sequences/youtube/<c>/videos`` and
  ``manipulated_sequences/<Method>/<c>/videos``, or the flat ``original/`` + ``<Method>/`` variant;
* Celeb-DF (:func:`read_celebdf`): ``Celeb-real``, ``YouTube-real``, ``Celeb-synthesis`` and the
  optional ``List_of_testing_videos.txt`` (where label 1 means *real*);
* DFDC (:func:`read_dfdc`): ``metadata.json`` files (``{"x.mp4": {"label": "FAKE", ...}}``) in
  the root or its part folders, or a ``labels.csv`` (``filename,label``) of the test set.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from detector.errors import InvalidRequest

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".heic", ".heif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"})
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES
_LABELS = {"0": 0, "1": 1, "real": 0, "fake": 1, "original": 0, "manipulated": 1, "synthetic": 1}


@dataclass(frozen=True)
class Sample:
    """One labelled media file; ``label`` 1 means manipulated or synthetic."""

    path: Path
    label: int
    group: str | None = None

    @property
    def is_video(self) -> bool:
        return self.path.suffix.lower() in VIDEO_SUFFIXES


def media_files(root: Path, suffixes: Iterable[str] = MEDIA_SUFFIXES) -> list[Path]:
    """Media files under ``root`` (recursive; hidden files and folders below ``root`` skipped), sorted."""
    wanted = frozenset(suffixes)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in wanted
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _require_dir(path: Path) -> Path:
    if not path.is_dir():
        raise InvalidRequest(f"{path} is not a folder")
    return path


def _first_part(path: Path, root: Path) -> str | None:
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


def read_folder(root: Path, label: int = 0, group: str | None = None) -> list[Sample]:
    """Every media file under ``root`` with the same ``label`` (default real)."""
    return [Sample(p, label, group) for p in media_files(_require_dir(root))]


def read_real_fake(root: Path, real: str = "real", fake: str = "fake") -> list[Sample]:
    """``root/<real>/**`` (label 0) and ``root/<fake>/**`` (label 1); group = first sub-folder."""
    out: list[Sample] = []
    for name, label in ((real, 0), (fake, 1)):
        folder = _require_dir(root / name)
        out += [Sample(p, label, _first_part(p, folder)) for p in media_files(folder)]
    if not out:
        raise InvalidRequest(f"no media found under {root}/{real} or {root}/{fake}")
    return out


def parse_label(value: str) -> int:
    """``0/1/real/fake`` (any case) -> 0 or 1; anything else is :class:`InvalidRequest`."""
    try:
        return _LABELS[value.strip().lower()]
    except KeyError:
        raise InvalidRequest(f"unknown label {value!r}; use 0/1 or real/fake") from None


def read_csv(path: Path) -> list[Sample]:
    """Rows ``path,label[,group]`` (optional header); relative paths are against the CSV's folder."""
    if not path.is_file():
        raise InvalidRequest(f"{path} is not a file")
    out: list[Sample] = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for lineno, row in enumerate(csv.reader(fh), start=1):
                if not row or row[0].startswith("#"):
                    continue
                if lineno == 1 and row[0].strip().lower() == "path":
                    continue
                if len(row) < 2:
                    raise InvalidRequest(f"{path}:{lineno}: expected path,label[,group]")
                media = Path(row[0].strip())
                media = media if media.is_absolute() else path.parent / media
                group = row[2].strip() or None if len(row) > 2 else None
                out.append(Sample(media, parse_label(row[1]), group))
    except UnicodeDecodeError:
        raise InvalidRequest(f"{path} is not UTF-8 text") from None
    return out


def read_faceforensics(
    root: Path, compression: str = "c23", methods: Iterable[str] | None = None
) -> list[Sample]:
    """FaceForensics++ videos: originals (label 0, group ``original``) and each method (label 1)."""
    _require_dir(root)
    wanted = set(methods) if methods is not None else None
    out: list[Sample] = []
    if (root / "original_sequences").is_dir():
        real = root / "original_sequences" / "youtube" / compression / "videos"
        out += [Sample(p, 0, "original") for p in media_files(_require_dir(real), VIDEO_SUFFIXES)]
        manipulated = _require_dir(root / "manipulated_sequences")
        for method_dir in sorted(d for d in manipulated.iterdir() if d.is_dir()):
            videos = method_dir / compression / "videos"
            if videos.is_dir() and (wanted is None or method_dir.name in wanted):
                out += [Sample(p, 1, method_dir.name) for p in media_files(videos, VIDEO_SUFFIXES)]
    elif (root / "original").is_dir():
        out += [Sample(p, 0, "original") for p in media_files(root / "original", VIDEO_SUFFIXES)]
        for method_dir in sorted(d for d in root.iterdir() if d.is_dir() and d.name != "original"):
            if wanted is None or method_dir.name in wanted:
                out += [Sample(p, 1, method_dir.name) for p in media_files(method_dir, VIDEO_SUFFIXES)]
    else:
        raise InvalidRequest(f"{root} has neither original_sequences/ nor original/ (FaceForensics++ layout)")
    return out


def read_celebdf(root: Path, test_only: bool = False) -> list[Sample]:
    """Celeb-DF: ``Celeb-real`` and ``YouTube-real`` (0), ``Celeb-synthesis`` (1); group = folder.

    With ``test_only`` the official ``List_of_testing_videos.txt`` selects (and labels) the videos.
    """
    _require_dir(root)
    if test_only:
        listing = root / "List_of_testing_videos.txt"
        if not listing.is_file():
            raise InvalidRequest(f"{listing} not found")
        out = []
        for line in listing.read_text(encoding="utf-8").splitlines():
            if line.strip():
                flag, rel = line.split(maxsplit=1)
                out.append(Sample(root / rel, 0 if flag == "1" else 1, Path(rel).parts[0]))
        return sorted(out, key=lambda s: s.path)
    out = []
    for folder, label in (("Celeb-real", 0), ("YouTube-real", 0), ("Celeb-synthesis", 1)):
        if (root / folder).is_dir():
            out += [Sample(p, label, folder) for p in media_files(root / folder, VIDEO_SUFFIXES)]
    if not out:
        raise InvalidRequest(f"{root} has no Celeb-real, YouTube-real or Celeb-synthesis videos")
    return out


def read_dfdc(root: Path) -> list[Sample]:
    """DFDC: labels from every ``metadata.json`` under ``root``, else from ``root/labels.csv``.

    The group is the source video (a fake's ``original``, a real video's own name), so a split by
    group keeps each source's real and fake versions together.
    """
    _require_dir(root)
    out: list[Sample] = []
    metas = sorted(root.rglob("metadata.json"))
    for meta in metas:
        try:
            entries = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidRequest(f"cannot read {meta}: {exc}") from exc
        if not isinstance(entries, dict):
            raise InvalidRequest(f"{meta} is not a JSON object of video name -> label")
        for name, info in sorted(entries.items()):
            label = parse_label(str(info.get("label", "")))
            original = info.get("original") or name
            out.append(Sample(meta.parent / name, label, str(Path(original).stem)))
    if out:
        return out
    labels = root / "labels.csv"
    if not labels.is_file():
        found = f"{len(metas)} metadata.json file(s) listing no video" if metas else "no metadata.json files"
        raise InvalidRequest(f"{root} has {found} and no labels.csv (DFDC layout)")
    with open(labels, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return sorted(
        (Sample(root / r["filename"], parse_label(r["label"]), None) for r in rows), key=lambda s: s.path
    )
