"""Face pools for training: context crops with 68 landmarks, labels, groups and demographic tags.

Each staged source (``datasets/sources.tsv``) turns into face items: still photos as they are
(LFW-derived ones in grayscale, so colour never marks a source), video clips as evenly spaced
frames (panels cropped where a demo shows several), every face found by the serving face detector
(MTCNN) and given dlib's 68 landmarks. A face is stored as a square *context crop*
(``context_margin`` x its box, ``size`` px) with its landmarks mapped into the crop, so pseudo-fakes
and the model's own centre crop are cut later without detecting again. The pool is cached as one
``.npz`` per source.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from datasets.images import context_crop, load_rgb

# Panels to keep from side-by-side demo clips: source name -> (x, y, width, height).
PANELS: dict[str, tuple[int, int, int, int]] = {
    "aniportrait_fake": (516, 2, 512, 512),
    "vasa_fake": (40, 0, 432, 432),
}
GRAYSCALE_SOURCES = frozenset({"lfw_gray"})
SUBSAMPLE = {"lfw_gray": 2}  # every 2nd file: 6,859 grayscale photos are plenty beside the colour faces
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi"})
_UTK = re.compile(r"^(\d+)_(\d)_(\d)_")
_FRAME = re.compile(r"#(\d+)$")


@dataclass
class FacePool:
    """``crops`` (N,S,S,3) uint8 context crops, ``landmarks`` (N,68,2) in crop pixels, and per face:
    ``labels`` (1 = a real manipulation), ``groups`` (identity or clip), ``tags`` (e.g. UTKFace
    ``age=31;gender=1;race=2``), ``sources`` (file, ``#i`` for a clip's i-th sampled frame), and
    ``frames_per_clip``: how many frames each clip was sampled at (None when it holds no clip frame)."""

    crops: np.ndarray
    landmarks: np.ndarray
    labels: np.ndarray
    groups: list[str]
    tags: list[str]
    sources: list[str]
    context_margin: float
    frames_per_clip: int | None = None
    counted: bool = True
    """False for a pool saved before the count was recorded: ``frames_per_clip`` is then inferred."""

    def __len__(self) -> int:
        return len(self.crops)

    def subset(self, keep: np.ndarray | list[int]) -> FacePool:
        """The faces at positions ``keep``."""
        idx = np.asarray(keep, dtype=np.int64)
        return FacePool(
            self.crops[idx],
            self.landmarks[idx],
            self.labels[idx],
            [self.groups[i] for i in idx],
            [self.tags[i] for i in idx],
            [self.sources[i] for i in idx],
            self.context_margin,
            self.frames_per_clip,
        )

    @classmethod
    def concat(cls, pools: list[FacePool]) -> FacePool:
        """One pool holding every face of ``pools`` (same margin and crop size)."""
        return cls(
            np.concatenate([p.crops for p in pools]),
            np.concatenate([p.landmarks for p in pools]),
            np.concatenate([p.labels for p in pools]),
            [g for p in pools for g in p.groups],
            [t for p in pools for t in p.tags],
            [s for p in pools for s in p.sources],
            pools[0].context_margin,
            max((p.frames_per_clip or 0 for p in pools), default=0) or None,
        )

    def save(self, path: Path) -> None:
        """One compressed ``.npz``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            crops=self.crops,
            landmarks=self.landmarks,
            labels=self.labels,
            groups=np.asarray(self.groups),
            tags=np.asarray(self.tags),
            sources=np.asarray(self.sources),
            context_margin=self.context_margin,
            frames_per_clip=self.frames_per_clip or 0,
        )

    @classmethod
    def load(cls, path: Path) -> FacePool:
        """A pool written by :meth:`save` (one saved before pools recorded their frames per clip gets
        the count its sources show)."""
        with np.load(path) as d:
            sources = [str(x) for x in d["sources"]]
            counted = "frames_per_clip" in d
            frames = int(d["frames_per_clip"]) or None if counted else clip_frames(sources)
            return cls(
                d["crops"],
                d["landmarks"].astype(np.float32),
                d["labels"].astype(np.uint8),
                [str(x) for x in d["groups"]],
                [str(x) for x in d["tags"]],
                sources,
                float(d["context_margin"]),
                frames,
                counted,
            )


def clip_frames(sources: list[str]) -> int | None:
    """The frames per clip that ``sources`` show (highest ``#i`` + 1), None when none is a clip frame."""
    found = [int(m.group(1)) for s in sources if (m := _FRAME.search(s))]
    return max(found) + 1 if found else None


@dataclass(frozen=True)
class FaceItem:
    """One image to search for faces, with what every face in it inherits."""

    image: np.ndarray
    group: str
    label: int
    tag: str
    source: str


def utk_tag(name: str) -> str:
    """``age=..;gender=..;race=..`` from a UTKFace file name (``age_gender_race_date...``), else ``""``."""
    m = _UTK.match(name)
    return f"age={m.group(1)};gender={m.group(2)};race={m.group(3)}" if m else ""


def _group_of(source: str, root: Path, path: Path) -> str:
    """Identity (photos) or clip (videos) of a file: faces of one group never straddle a split."""
    if source == "lfw_gray":
        return f"{source}/{path.stem.rsplit('_', 1)[0]}"
    if source == "taiwanese" and path.suffix.lower() == ".jpg":
        return f"{source}/{path.stem[:2]}"
    if source == "utkface":
        return f"{source}/{path.name.split('.')[0]}"
    return f"{source}/{path.relative_to(root).with_suffix('').as_posix()}"


def video_frames(path: Path, n: int, panel: tuple[int, int, int, int] | None) -> list[np.ndarray]:
    """``n`` evenly spaced frames of a clip (the serving sampler), cut to ``panel`` when given."""
    from detector.media.loader import MediaLoader
    from detector.media.sampling import FrameSampler

    loader = MediaLoader()
    frames = [f.image for f in FrameSampler(loader=loader).sample(loader.load(path), n).frames]
    if panel is None:
        return frames
    x, y, w, h = panel
    return [np.ascontiguousarray(f[y : y + h, x : x + w]) for f in frames]


def source_items(source: str, kind: str, root: Path, frames_per_clip: int) -> Iterator[FaceItem]:
    """Every image (or sampled clip frame) of one staged source, with its label, group and tag."""
    label = 1 if kind.startswith("fake") else 0
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    if source in SUBSAMPLE:
        paths = paths[:: SUBSAMPLE[source]]
    for path in paths:
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            for i, frame in enumerate(video_frames(path, frames_per_clip, PANELS.get(source))):
                yield FaceItem(frame, _group_of(source, root, path), label, "", f"{path}#{i}")
        elif suffix in {".jpg", ".jpeg", ".png"}:
            image = load_rgb(path)
            if source in GRAYSCALE_SOURCES:
                image = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
            tag = utk_tag(path.name) if source == "utkface" else ""
            yield FaceItem(image, _group_of(source, root, path), label, tag, str(path))


def build_pool(
    items: Iterator[FaceItem],
    detect: Callable[[list[np.ndarray]], list[list[tuple[tuple[float, float, float, float], float]]]],
    landmarks: Callable[[np.ndarray, tuple[float, float, float, float]], np.ndarray],
    *,
    context_margin: float = 2.0,
    size: int = 224,
    max_faces: int = 2,
    chunk: int = 16,
) -> FacePool:
    """Detect faces in every item (``chunk`` images per detector call), add 68 landmarks, keep context
    crops of the largest ``max_faces`` faces."""
    crops, marks, labels, groups, tags, sources = [], [], [], [], [], []
    pending: list[FaceItem] = []

    def flush() -> None:
        for item, found in zip(pending, detect([it.image for it in pending]), strict=True):
            for box, _prob in found[:max_faces]:
                crop, _box, lm_crop = context_crop(
                    item.image, box, landmarks(item.image, box), context_margin, size
                )
                crops.append(crop)
                marks.append(lm_crop)
                labels.append(item.label)
                groups.append(item.group)
                tags.append(item.tag)
                sources.append(item.source)
        pending.clear()

    for item in items:
        pending.append(item)
        if len(pending) == chunk:
            flush()
    flush()
    if not crops:
        raise ValueError("no face was found in any item")
    return FacePool(
        np.stack(crops),
        np.stack(marks).astype(np.float32),
        np.asarray(labels, np.uint8),
        groups,
        tags,
        sources,
        context_margin,
    )


def cached_pool(name: str, kind: str, root: Path, out: Path, frames_per_clip: int, size: int) -> FacePool:
    """The pool of one folder of faces (``out/<name>_<size>.npz``), built with MTCNN + dlib on first use
    and built again when its clips were sampled at another ``frames_per_clip`` (it was reused)."""
    path = out / f"{name}_{size}.npz"
    if path.exists():
        pool = FacePool.load(path)
        if pool.frames_per_clip in (None, frames_per_clip):
            return pool
        if not pool.counted:  # saved before pools recorded it: the count is a guess, keep the pool
            guess = f"{path} predates recorded frame counts (its sources show {pool.frames_per_clip})"
            print(f"{name}: warning: {guess}; delete it to build it at {frames_per_clip}", file=sys.stderr)
            return pool
        held = f"{path} holds {pool.frames_per_clip} frames per clip, {frames_per_clip} asked"
        if not root.is_dir():
            raise SystemExit(f"error: {held}, and {root} is not staged to build it again")
        print(f"{name}: {held}: building it again", file=sys.stderr, flush=True)
    pool = _build_pool(name, kind, root, frames_per_clip, size)
    pool.save(path)
    print(f"{name}: {len(pool)} faces -> {path}", flush=True)
    return pool


def _build_pool(name: str, kind: str, root: Path, frames_per_clip: int, size: int) -> FacePool:
    """Detect (MTCNN), mark (dlib) and crop every face of one staged source."""
    from datasets.landmarks import LandmarkModel
    from detector.faces.extract import FaceExtractor
    from detector.settings import FaceSettings

    extractor = FaceExtractor(FaceSettings(min_face_px=64, min_probability=0.95), device="cpu")

    def detect(images: list[np.ndarray]) -> list[list[tuple[tuple[float, float, float, float], float]]]:
        return [[(d.box, d.probability) for d in found] for found in extractor.detect(images)]

    pool = build_pool(source_items(name, kind, root, frames_per_clip), detect, LandmarkModel(), size=size)
    pool.frames_per_clip = frames_per_clip if clip_frames(pool.sources) else None
    return pool


def build_all(staged: Path, out: Path, frames_per_clip: int, size: int) -> list[str]:
    """Build the pool of every face source of ``sources.tsv`` staged under ``staged``."""
    from datasets.staging import read_sources

    built = []
    for source in read_sources():
        if "face" in source.kind and (staged / source.name).exists():
            cached_pool(source.name, source.kind, staged / source.name, out, frames_per_clip, size)
            built.append(source.name)
    return built


def main(argv: list[str] | None = None) -> int:
    """``python -m datasets.face_pool --staged runs/staged --out runs/pools``."""
    import argparse

    parser = argparse.ArgumentParser(description="Build face pools (MTCNN + 68 landmarks) from staged data.")
    parser.add_argument("--staged", type=Path, default=Path("runs/staged"))
    parser.add_argument("--out", type=Path, default=Path("runs/pools"))
    parser.add_argument("--frames-per-clip", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args(argv)
    built = build_all(args.staged, args.out, args.frames_per_clip, args.size)
    if not built:  # said nothing and exited 0 before
        hint = "python -m datasets.staging stage"
        print(f"error: no face source is staged under {args.staged} ({hint})", file=sys.stderr)
        return 2
    print(f"{len(built)} face pool(s) under {args.out}: {', '.join(built)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
