"""The development evaluation set: items, identity groups, the documented calibration split, variants.

Items come from ``../shared/data/dev/INDEX.tsv`` (talking-head videos and images) plus the
FaceForensics++ pair in ``../shared/data/deepfake/ffpp_c23``. No model ever trains on them.

**Split.** Calibration is fitted on one half and every reported figure comes from the other. Items
that show the same person or the same clip form one *group* (:func:`group_of`: MEAD speakers,
Fei-Fei Li's two clips, each ``furious_talk`` pair, the DreamTalk clip at two resolutions, EDTalk's
two "A" clips); groups never straddle the halves. Within each (set, label, kind) stratum, groups
are ordered by the sha1 of their name and alternate report, calibrate, report... so every
generator sits in both halves and a stratum of one group (the FaceForensics++ pair) is reported.

**Sources seen in training.** Training never used a dev file, but it did use other files of some
dev sources: other MEAD clips of the same three speakers, other clips of the StyleTalk people,
other VASA-1 and AniPortrait demos, other SFHQ-T2I figures, other ImageNet samples. A dev item is
*seen* (:attr:`DevItem.seen`, :func:`seen_in_training`) when a training source of
``datasets/sources.tsv`` draws files from the same repository folder as the item, or, for a
source that lists single files, from a sibling folder of the same parent (``vasa-1/10/gt.mp4``
and ``vasa-1/12/gt.mp4``). Such items are easier than what users send (the models have learnt
that footage's look), so the suite also reports each set against reals from unseen sources only,
and the verdict bands' false-positive rates are chosen on those reals
(:mod:`detector.evaluation.calibrate`).

**Matched variant.** The dev set has format and size shortcuts (every generated image is PNG or
a cut of a downscaled figure, every real one a camera JPEG; generated videos are larger). The
``matched`` variant re-encodes both classes alike (:func:`variant_copy`): images to a 256 px
square JPEG at quality 90, videos to their first 8 s as a 256 px square H.264 (CRF 23, no audio).

**Upscaled variant.** The matched copy enlarged 2x by bicubic resampling before it is encoded
(512 px, same JPEG / H.264 settings): real photos are often enlarged by software, and a detector
of generator up-sampling must not read plain interpolation as generation. Compared with
``matched``, it shows what enlarging alone does to the scores. Not used for calibration.

**Greyscale variant.** The matched copy with its colour removed (ITU-R 601 luma in all three
channels, same JPEG / H.264 settings): old photos, black-and-white film and converted pictures,
which the scope calls greyscale and limits (:mod:`detector.scoring.scope`). Compared with
``matched``, it shows what losing colour does to the scores. Not used for calibration.

**Degraded variants.** Media the detectors were not validated on, which the scope marks as
degraded (:mod:`detector.scoring.scope`): ``thumbnail`` is the matched square shrunk to 96 px
(JPEG quality 90; H.264 CRF 23), ``heavy`` the matched square at JPEG quality 10 or as H.264 at
CRF 51 (a starved stream), ``webp``, ``avif`` and ``heic`` (images only) the matched square as
WebP at quality 30, AVIF at quality 35 or HEIC at quality 30 (pillow-heif). They show whether
such media are held back from accusations and how much ranking evidence survives. Their calibrate
half fits only the fusion sections for degraded media (:data:`CALIBRATION_VARIANTS`).

**Screenshot variant** (images only). The dev image as a phone shows it in a feed post, captured as a
PNG: its centre square at :data:`SCREENSHOT_SHOWN` px (area resampling, as a screen shrinks a picture)
in a :data:`SCREENSHOT_SIZE` canvas with bars, an avatar and lines of text, light or dark by the
file's name (:func:`screenshot`). Both classes alike, so format and size are no cue. It shows what
the scope's inset rule (:mod:`detector.scoring.inset`) holds back. Not used for calibration.

**Chat variant** (images only). The dev image as a messaging app shows it, a second screenshot layout
(the inset rule's peeling was chosen on its calibrate half, nothing else of the rule): the whole
picture, its aspect kept and its longer side at :data:`CHAT_SHOWN` px (bicubic, as a phone scales a
picture), in a bubble of another colour than the wallpaper, with the time drawn over its corner, between
bubbles of text under a header bar, light or dark by the file's name (:func:`chat`), in a
:data:`CHAT_SIZE` screen saved as JPEG at quality :data:`CHAT_JPEG_QUALITY` (a screenshot shared
onward). Not used for calibration.

**Page and card variants** (images only). Two more layouts: :func:`page`, a desktop article page (a
headline above the picture, a caption under it; PNG), and :func:`card`, a post in a desktop social
network's feed (a card on a grey page with text above the picture and actions under it, the
picture's corners rounded; JPEG at :data:`CARD_JPEG_QUALITY`). Not used for calibration.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from detector.errors import InvalidRequest

if TYPE_CHECKING:
    from PIL import Image

    from datasets.staging import Source

VARIANTS = (
    *("original", "matched", "upscaled", "greyscale", "thumbnail", "heavy"),
    *("webp", "avif", "heic", "screenshot", "chat", "page", "card"),
)
DEFAULT_VARIANTS = ("original", "matched")
CALIBRATION_VARIANTS = ("original", "matched", "thumbnail", "heavy", "webp", "avif", "heic")
"""What ``trueframe calibrate`` fits on: the degraded copies feed only the degraded sections."""
MATCHED_SIDE = 256
UPSCALE_FACTOR = 2
MATCHED_SECONDS = 8.0
THUMBNAIL_SIDE = 96
HEAVY_JPEG_QUALITY = 10
HEAVY_CRF = 51
WEBP_QUALITY = 30
AVIF_QUALITY = 35
HEIC_QUALITY = 30
_MODERN_FORMATS = {
    "webp": ("WEBP", WEBP_QUALITY),
    "avif": ("AVIF", AVIF_QUALITY),
    "heic": ("HEIF", HEIC_QUALITY),
}
IMAGE_ONLY_VARIANTS = frozenset({*_MODERN_FORMATS, "screenshot", "chat", "page", "card"})
SCREENSHOT_SIZE = (432, 768)
SCREENSHOT_SHOWN = 384
CHAT_SIZE = (540, 1170)
"""Width and height: half of a 1080x2340 phone screen."""
CHAT_SHOWN = 320
CHAT_JPEG_QUALITY = 90
PAGE_SIZE = (1280, 800)
PAGE_SHOWN = 560
CARD_SIZE = (1280, 1000)
CARD_SHOWN = 600
CARD_JPEG_QUALITY = 85
_SUFFIXES = {**{name: f".{name}" for name in _MODERN_FORMATS}, "screenshot": ".png", "page": ".png"}
_GROUP_RULES: tuple[tuple[str, str], ...] = (
    (r"dreamtalk_(ack|metaportrait)", "dreamtalk"),
    (r"dreamtalk_mead__(\w\d{3})_", r"mead_\1"),
    (r"feifeili_clip", "feifeili"),
    (r"(furious_talk\d)_clip", r"\1"),
    (r"demo_EDTalk_A(_using_predefined_exp_weights)?_512", "edtalk_A"),
)


@dataclass(frozen=True)
class DevItem:
    """One dev file: its label (1 = fake), kind (generator or source), set, group and half."""

    relpath: str
    path: Path
    label: int
    kind: str
    set: str
    group: str
    half: str = "report"
    seen: bool = False
    """Whether training used other files of this item's source folder (see the module docstring)."""


def short_kind(kind: str) -> str:
    """The generator or source name without the parenthesised details of INDEX.tsv."""
    return kind.split(" (")[0].split(":")[0].strip()


def group_of(relpath: str) -> str:
    """The identity/clip group of a dev file (see the module docstring)."""
    stem = Path(relpath).stem
    for pattern, group in _GROUP_RULES:
        match = re.search(pattern, stem)
        if match:
            return match.expand(group)
    return stem


def _folders(pattern: str) -> tuple[PurePosixPath, PurePosixPath | None]:
    """The folder a training include pattern draws from and, for a single-file pattern inside a
    per-clip folder (``vasa-1/10/gt.mp4``), the parent of that folder (None otherwise)."""
    folder = PurePosixPath(pattern).parent
    literal = not any(ch in pattern for ch in "*?[")
    return folder, (folder.parent if literal and folder.parent != PurePosixPath(".") else None)


def seen_in_training(repo: str, path: str, sources: Sequence[Source]) -> bool:
    """Whether a training source draws files from the folder of ``path`` in ``repo`` (a zip member,
    ``a.zip:b/c.mp4``, counts as the zip's folder), or from a sibling per-clip folder."""
    folder = PurePosixPath(path.split(":", 1)[0]).parent
    for source in sources:
        if source.repo.lower() != repo.lower():
            continue
        for pattern in source.include:
            own, parent = _folders(pattern)
            if folder == own or (parent is not None and folder.parent == parent):
                return True
    return False


INDEX_COLUMNS = ("relpath", "label", "kind", "source_repo", "source_path")
"""The INDEX.tsv columns the suite reads; every row must fill each one."""


def _index_row(row: dict[str, str | None], where: str) -> tuple[str, str, str, str, str]:
    """One INDEX.tsv row's columns, checked: a short row or a label other than ``real`` / ``fake``
    (a typo counted as real would move every metric silently) is a typed error naming the line."""
    values = tuple((row.get(column) or "").strip() for column in INDEX_COLUMNS)
    missing = [column for column, value in zip(INDEX_COLUMNS, values, strict=True) if not value]
    if missing:
        raise InvalidRequest(f"{where}: no {', '.join(missing)} (columns: {', '.join(INDEX_COLUMNS)})")
    if values[1] not in ("real", "fake"):
        raise InvalidRequest(f"{where}: label {values[1]!r} is neither real nor fake")
    return values[0], values[1], values[2], values[3], values[4]


def read_dev_set(dev_dir: Path, ffpp_dir: Path | None = None) -> list[DevItem]:
    """Every dev item (and the FaceForensics++ pair when ``ffpp_dir`` exists), with its half and
    whether a training source of ``datasets/sources.tsv`` draws on its source folder."""
    from datasets.staging import read_sources

    training = read_sources()
    items = []
    index = dev_dir / "INDEX.tsv"
    try:
        with open(index, encoding="utf-8", newline="") as fh:
            for lineno, row in enumerate(csv.DictReader(fh, delimiter="\t"), start=2):
                relpath, label, kind, repo, source = _index_row(row, f"{index}:{lineno}")
                items.append(
                    DevItem(
                        relpath,
                        dev_dir / relpath,
                        int(label == "fake"),
                        short_kind(kind),
                        relpath.split("/")[0],
                        group_of(relpath),
                        seen=seen_in_training(repo, source, training),
                    )
                )
    except UnicodeDecodeError:
        raise InvalidRequest(f"{index} is not UTF-8 text") from None
    if not items:
        raise InvalidRequest(f"{index} lists no items")
    if ffpp_dir is not None and ffpp_dir.is_dir():
        for path, fake in (
            (ffpp_dir / "original" / "519.mp4", 0),
            (ffpp_dir / "Deepfakes" / "519_515.mp4", 1),
        ):
            kind = "FaceForensics++ Deepfakes" if fake else "FaceForensics++ original"
            items.append(DevItem(f"ffpp/{path.name}", path, fake, kind, "faces_video", "ffpp_519"))
    return assign_halves(items)


def assign_halves(items: list[DevItem]) -> list[DevItem]:
    """Alternate whole groups between ``report`` and ``calibrate`` within each (set, label, kind)."""
    strata: dict[tuple[str, int, str], list[str]] = {}
    for item in items:
        groups = strata.setdefault((item.set, item.label, item.kind), [])
        if item.group not in groups:
            groups.append(item.group)
    half: dict[tuple[str, int, str, str], str] = {}
    for stratum, groups in strata.items():
        ordered = sorted(groups, key=lambda g: hashlib.sha1(g.encode()).hexdigest())
        for i, group in enumerate(ordered):
            half[(*stratum, group)] = "report" if i % 2 == 0 else "calibrate"
    return [replace(it, half=half[(it.set, it.label, it.kind, it.group)]) for it in items]


def _square(image: np.ndarray, side: int) -> np.ndarray:
    """The centre square of ``image`` resized to ``side`` px (area when shrinking, cubic otherwise)."""
    import cv2

    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    square = image[top : top + s, left : left + s]
    flag = cv2.INTER_AREA if s > side else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(square, (side, side), interpolation=flag))


def _side(variant: str) -> int:
    """The square side of ``variant``'s copies."""
    return {"upscaled": MATCHED_SIDE * UPSCALE_FACTOR, "thumbnail": THUMBNAIL_SIDE}.get(variant, MATCHED_SIDE)


def _variant_frame(image: np.ndarray, variant: str) -> np.ndarray:
    """``image`` as ``variant`` shows it: the matched square, enlarged or shrunk to its side, or grey."""
    import cv2

    square = _square(image, MATCHED_SIDE)
    if variant == "greyscale":
        return np.ascontiguousarray(np.repeat(cv2.cvtColor(square, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2))
    side = _side(variant)
    if side == MATCHED_SIDE:
        return square
    flag = cv2.INTER_CUBIC if side > MATCHED_SIDE else cv2.INTER_AREA
    return np.ascontiguousarray(cv2.resize(square, (side, side), interpolation=flag))


def _variant_image(src: Path, dst: Path, variant: str) -> None:
    from PIL import Image, ImageOps

    with Image.open(src) as im:
        rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    dark = hashlib.sha256(src.name.encode()).digest()[0] % 2 == 1
    if variant == "screenshot":
        Image.fromarray(screenshot(_square(rgb, SCREENSHOT_SHOWN), dark)).save(dst, format="PNG")
        return
    if variant == "chat":
        Image.fromarray(chat(rgb, dark)).save(dst, format="JPEG", quality=CHAT_JPEG_QUALITY)
        return
    if variant == "page":
        Image.fromarray(page(rgb, dark)).save(dst, format="PNG")
        return
    if variant == "card":
        Image.fromarray(card(rgb, dark)).save(dst, format="JPEG", quality=CARD_JPEG_QUALITY)
        return
    frame = Image.fromarray(_variant_frame(rgb, variant))
    from detector.media.loader import save_image

    default = ("JPEG", HEAVY_JPEG_QUALITY if variant == "heavy" else 90)
    save_image(frame, dst, *_MODERN_FORMATS.get(variant, default))


def screenshot(picture: np.ndarray, dark: bool) -> np.ndarray:
    """``picture`` (RGB uint8) pasted into a phone's feed post (:data:`SCREENSHOT_SIZE`): top and bottom
    bars, an avatar, three lines of text above it, in the light or the dark theme."""
    from PIL import Image, ImageDraw

    width, height = SCREENSHOT_SIZE
    canvas = Image.new("RGB", SCREENSHOT_SIZE, (21, 32, 43) if dark else (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    bar, ink = ((0, 0, 0), (230, 233, 234)) if dark else ((245, 248, 250), (15, 20, 25))
    draw.rectangle([0, 0, width, 56], fill=bar)
    draw.ellipse([12, 70, 56, 114], fill=(29, 155, 240))
    for line, text in enumerate(("someone shared this", "look at this picture", "posted today")):
        draw.text((68, 70 + 18 * line), text, fill=ink, font_size=14)
    left = (width - picture.shape[1]) // 2
    canvas.paste(Image.fromarray(picture), (left, 140))
    draw.rectangle([0, height - 56, width, height], fill=bar)
    return np.asarray(canvas)


def _shown(picture: np.ndarray, longest: int) -> Image.Image:
    """``picture`` as a screen shows it: its aspect kept, its longer side ``longest`` px (bicubic)."""
    from PIL import Image

    h, w = picture.shape[:2]
    scale = longest / max(h, w)
    return Image.fromarray(picture).resize((round(w * scale), round(h * scale)), Image.Resampling.BICUBIC)


def chat(picture: np.ndarray, dark: bool) -> np.ndarray:
    """``picture`` (RGB uint8) in a messaging app (:data:`CHAT_SIZE`): a header bar, two bubbles of text
    above it, the picture in a bubble of its own (its longer side :data:`CHAT_SHOWN` px) with the time
    drawn over its corner, one bubble of text below and a bottom bar, in the light or the dark theme."""
    from PIL import Image, ImageDraw

    width, height = CHAT_SIZE
    wall, bar, theirs, mine, ink = (
        ((11, 20, 26), (31, 44, 52), (32, 44, 51), (0, 92, 75), (233, 237, 239))
        if dark
        else ((236, 229, 221), (0, 128, 105), (255, 255, 255), (220, 248, 198), (17, 27, 33))
    )
    canvas = Image.new("RGB", CHAT_SIZE, wall)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, width, 100], fill=bar)
    draw.text((90, 40), "Sam", fill=(255, 255, 255), font_size=24)
    top = 130
    for text in ("did you see this?", "look"):
        draw.rounded_rectangle([20, top, 50 + 12 * len(text), top + 50], radius=14, fill=theirs)
        draw.text((35, top + 13), text, fill=ink, font_size=22)
        top += 74
    shown = _shown(picture, CHAT_SHOWN)
    pad, right = 6, width - 20
    left = right - shown.width - 2 * pad
    draw.rounded_rectangle([left, top, right, top + shown.height + 2 * pad], radius=14, fill=mine)
    canvas.paste(shown, (left + pad, top + pad))
    draw.text((right - pad - 60, top + pad + shown.height - 28), "12:41", fill=(255, 255, 255), font_size=18)
    top += shown.height + 2 * pad + 24
    draw.rounded_rectangle([right - 170, top, right, top + 50], radius=14, fill=mine)
    draw.text((right - 155, top + 13), "is it real?", fill=ink, font_size=22)
    draw.rectangle([0, height - 110, width, height], fill=bar)
    return np.asarray(canvas)


def page(picture: np.ndarray, dark: bool) -> np.ndarray:
    """``picture`` (RGB uint8) in a desktop browser's article page (:data:`PAGE_SIZE`): a browser bar and a
    site's navigation, a headline and a line of text above the picture (its longer side
    :data:`PAGE_SHOWN` px, left in the article's column), a caption right under it, and a sidebar of
    grey boxes with text, in the light or the dark theme."""
    from PIL import Image, ImageDraw

    width = PAGE_SIZE[0]
    paper, chrome, nav, box, ink = (
        ((24, 24, 27), (53, 54, 58), (0, 0, 0), (39, 39, 42), (228, 228, 231))
        if dark
        else ((255, 255, 255), (222, 225, 230), (30, 41, 59), (243, 244, 246), (17, 24, 39))
    )
    canvas = Image.new("RGB", PAGE_SIZE, paper)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, width, 40], fill=chrome)
    draw.rounded_rectangle([120, 8, 900, 32], radius=12, fill=paper)
    draw.text((140, 12), "https://news.example/world/picture-of-the-day", fill=ink, font_size=14)
    draw.rectangle([0, 40, width, 90], fill=nav)
    for i, word in enumerate(("World", "Politics", "Science", "Culture")):
        draw.text((60 + 120 * i, 56), word, fill=(255, 255, 255), font_size=18)
    draw.text((60, 110), "The picture everyone is sharing this week", fill=ink, font_size=30)
    draw.text(
        (60, 156), "Readers sent us this image. Here is what we know about it so far.", fill=ink, font_size=16
    )
    shown = _shown(picture, PAGE_SHOWN)
    canvas.paste(shown, (60, 190))
    draw.text(
        (60, 190 + shown.height + 8),
        "Photo: a reader. The source could not be verified.",
        fill=ink,
        font_size=14,
    )
    for i in range(3):
        top = 110 + 170 * i
        draw.rectangle([900, top, 1220, top + 150], fill=box)
        draw.text((920, top + 20), ("Most read", "Newsletter", "Corrections")[i], fill=ink, font_size=18)
        draw.text((920, top + 60), "More stories from today", fill=ink, font_size=14)
    return np.asarray(canvas)


def card(picture: np.ndarray, dark: bool) -> np.ndarray:
    """``picture`` (RGB uint8) in a social network's post on a desktop (:data:`CARD_SIZE`): a card on a
    grey page, with an avatar, a name and two lines of text above the picture, the picture across the
    card's width (:data:`CARD_SHOWN` px, its longer side at most that) with rounded corners, and a row
    of actions under it, in the light or the dark theme."""
    from PIL import Image, ImageDraw

    page_grey, paper, ink, accent = (
        ((24, 25, 26), (36, 37, 38), (228, 230, 235), (45, 136, 255))
        if dark
        else ((240, 242, 245), (255, 255, 255), (5, 5, 5), (24, 119, 242))
    )
    canvas = Image.new("RGB", CARD_SIZE, page_grey)
    draw = ImageDraw.Draw(canvas)
    shown = _shown(picture, CARD_SHOWN)
    left, top = (CARD_SIZE[0] - CARD_SHOWN) // 2, 60
    bottom = top + 120 + shown.height + 70
    draw.rounded_rectangle([left, top, left + CARD_SHOWN, bottom], radius=10, fill=paper)
    draw.ellipse([left + 16, top + 16, left + 56, top + 56], fill=accent)
    draw.text((left + 68, top + 18), "Alex Morgan", fill=ink, font_size=16)
    draw.text((left + 16, top + 72), "Can anyone tell me where this was taken?", fill=ink, font_size=16)
    draw.text((left + 16, top + 94), "Found it in a group this morning.", fill=ink, font_size=16)
    corners = Image.new("L", shown.size, 0)
    ImageDraw.Draw(corners).rounded_rectangle([0, 0, shown.width - 1, shown.height - 1], radius=16, fill=255)
    canvas.paste(shown, (left + (CARD_SHOWN - shown.width) // 2, top + 120), corners)
    for i, word in enumerate(("Like", "Comment", "Share")):
        draw.text((left + 60 + 190 * i, bottom - 45), word, fill=ink, font_size=16)
    return np.asarray(canvas)


def _variant_video(src: Path, dst: Path, variant: str) -> None:
    import av

    crf = HEAVY_CRF if variant == "heavy" else 23
    options: dict[str, object] = {"crf": str(crf), "preset": "medium"}
    if _side(variant) < MATCHED_SIDE:
        # x264's SIMD code made 96 px copies of the same clip differ from run to run (FF++ 519: 1 of
        # 4 encodes unlike the others; a dev AniPortrait clip: 4 different files in 4 encodes), so
        # the suite's thumbnail rows moved between cache rebuilds; its C code gives the same bytes
        # every time (the 256 px copies always did).
        options["x264-params"] = "asm=0"
    with av.open(str(src)) as inp, av.open(str(dst), mode="w") as out:
        stream_in = inp.streams.video[0]
        rate = stream_in.average_rate or 25
        stream = out.add_stream("libx264", rate=rate)
        stream.width = stream.height = _side(variant)
        stream.pix_fmt, stream.options = "yuv420p", options
        for frame in inp.decode(stream_in):
            if frame.time is not None and frame.time >= MATCHED_SECONDS:
                break
            image = _variant_frame(frame.to_ndarray(format="rgb24"), variant)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())


def is_video(item: DevItem) -> bool:
    """Whether the item is a video (by its file's suffix)."""
    return item.path.suffix.lower() in {".mp4", ".mov", ".mkv", ".webm", ".avi"}


def applies(variant: str, item: DevItem) -> bool:
    """Whether ``variant`` has a copy of ``item`` (the :data:`IMAGE_ONLY_VARIANTS` copy images only)."""
    return variant not in IMAGE_ONLY_VARIANTS or not is_video(item)


def variant_copy(item: DevItem, variant: str, cache: Path) -> Path:
    """The file ``variant`` scores for ``item``: the original, or its re-encoded copy (built once
    under ``cache/<variant>``)."""
    if variant == "original":
        return item.path
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    if not applies(variant, item):
        raise ValueError(f"variant {variant!r} has no copy of a video ({item.relpath})")
    digest = hashlib.sha256(item.relpath.encode()).hexdigest()[:16]
    video = is_video(item)
    suffix = ".mp4" if video else _SUFFIXES.get(variant, ".jpg")
    dst = cache / variant / f"{digest}{suffix}"
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name("tmp-" + dst.name)
        (_variant_video if video else _variant_image)(item.path, tmp, variant)
        tmp.replace(dst)
    return dst
