"""Image pools for the synthetic-image model: real photos and faces vs images of known generators.

Each staged source (plus the shared real photos and generated images) becomes a list of RGB uint8
images with a label, a *family* (the generator, or the kind of real image) and a group (so that
validation never shares a grid, figure or clip with training). Large images are cut (never
resized) to at most ``max_side`` so generator traces survive. Source-specific rules live here:
the 2x2 SD 1.5 grids are cut into their four tiles (only grids whose checkpoint is listed),
search-result figures into their face tiles minus any that match a dev face, demo videos into
frames of their generated panel, LIME's BMPs are used as decoded pixels like every other file.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasets.face_pool import PANELS, video_frames
from datasets.figure_tiles import DevMatcher, grid_tiles
from datasets.images import image_files, load_rgb


@dataclass
class ImagePool:
    """Images with their label (1 = generated), family and group."""

    images: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def add(self, image: np.ndarray, label: int, family: str, group: str) -> None:
        """Append one image."""
        self.images.append(image)
        self.labels.append(label)
        self.families.append(family)
        self.groups.append(group)

    def extend(self, other: ImagePool) -> None:
        """Append every image of ``other``."""
        for item in zip(other.images, other.labels, other.families, other.groups, strict=True):
            self.add(*item)

    def __len__(self) -> int:
        return len(self.images)


def cap(image: np.ndarray, max_side: int) -> np.ndarray:
    """The centre of ``image`` cut to at most ``max_side`` per side (no resampling)."""
    h, w = image.shape[:2]
    top, left = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    return np.ascontiguousarray(image[top : top + max_side, left : left + max_side])


def sd_checkpoints(data_js: Path) -> dict[str, str]:
    """Image file -> checkpoint name from the cheat sheet's ``src/data.js`` (entries without one dropped)."""
    text = data_js.read_text(encoding="utf-8")
    body = re.sub(r'\\(?!["\\/bfnrtu])', "", text[text.index("[") : text.rindex("]") + 1])  # JS-only escapes
    rows = json.loads(body)
    return {r["Image"]: r["Checkpoint"] for r in rows if r.get("Image") and r.get("Checkpoint")}


def _sd15(root: Path) -> Iterator[tuple[np.ndarray, str, str]]:
    checkpoints = sd_checkpoints(root / "src" / "data.js")
    for path in image_files(root / "img"):
        if path.name not in checkpoints:
            continue
        grid = load_rgb(path)
        h, w = grid.shape[0] // 2, grid.shape[1] // 2
        for y in (0, h):
            for x in (0, w):
                family = "sd15_" + checkpoints[path.name].split()[0].lower()
                yield np.ascontiguousarray(grid[y : y + h, x : x + w]), family, f"sd15/{path.stem}"


def _figures(root: Path, dev_faces: list[np.ndarray]) -> Iterator[tuple[np.ndarray, str, str]]:
    is_dev = DevMatcher(dev_faces)
    for path in image_files(root):
        for i, tile in enumerate(grid_tiles(load_rgb(path))):
            if not is_dev(tile):
                yield tile, "sfhq_t2i", f"sfhq/{path.stem}#{i // 10}"


def _frames(root: Path, source: str, per_clip: int) -> Iterator[tuple[np.ndarray, str, str]]:
    for path in sorted(p for p in root.rglob("*.mp4")):
        for frame in video_frames(path, per_clip, PANELS.get(source)):
            yield frame, source, f"{source}/{path.relative_to(root).with_suffix('')}"


def _files(root: Path, family: str, by_folder: bool) -> Iterator[tuple[np.ndarray, str, str]]:
    for path in image_files(root):
        group = path.parent.relative_to(root).as_posix() if by_folder else path.name.split(".")[0]
        yield load_rgb(path), family, f"{family}/{group}"


def source_images(
    name: str, kind: str, root: Path, dev_faces: list[np.ndarray]
) -> Iterator[tuple[np.ndarray, str, str]]:
    """(image, family, group) of one source by its rules."""
    if name == "sd15_fake":
        yield from _sd15(root)
    elif name == "sfhq_fake":
        yield from _figures(root, dev_faces)
    elif kind.endswith("video"):
        yield from _frames(root, name, 8)
    else:
        yield from _files(
            root, name, by_folder=name in {"dreambooth_real", "shared_generated", "shared_real"}
        )


def cached_images(
    name: str, kind: str, root: Path, out: Path, max_side: int, dev_faces: list[np.ndarray]
) -> ImagePool:
    """The image pool of one source (``out/<name>.pkl``), built on first use."""
    path = out / f"images_{name}_{max_side}.pkl"
    if path.exists():
        with open(path, "rb") as fh:
            cached: ImagePool = pickle.load(fh)
        return cached
    pool = ImagePool()
    label = 1 if kind.startswith("fake") else 0
    for image, family, group in source_images(name, kind, root, dev_faces):
        if min(image.shape[:2]) >= 64:
            pool.add(cap(image, max_side), label, family, group)
    out.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(pool, fh, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"{name}: {len(pool)} images -> {path}", flush=True)
    return pool
