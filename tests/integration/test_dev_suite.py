"""The dev suite end to end on a two-item set: the shipped defaults score it, the tables are written,
and every metric equals scikit-learn's on the same scores; the documented split keeps groups whole."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from datasets.staging import Source
from detector.evaluation.dev_set import (
    IMAGE_ONLY_VARIANTS,
    DevItem,
    applies,
    assign_halves,
    group_of,
    read_dev_set,
    seen_in_training,
    variant_copy,
)
from detector.evaluation.runner import (
    SuiteConfig,
    collect_all,
    face_photo_items,
    heldout_face_items,
    render,
    run_dev_suite,
)
from detector.evaluation.suite import Scored, summarize
from detector.settings import Settings
from tests.support import mediagen


@pytest.fixture(scope="module")
def two_items(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dev folder with one real camera-like JPEG and one generated-like PNG, and its INDEX.tsv."""
    root = tmp_path_factory.mktemp("dev")
    (root / "synthetic" / "real").mkdir(parents=True)
    (root / "synthetic" / "fake").mkdir(parents=True)
    photo = mediagen.face_photo()
    Image.fromarray(photo).save(root / "synthetic" / "real" / "photo.jpg", quality=92)
    smooth = np.asarray(Image.fromarray(photo).resize((128, 128)).resize((512, 512), Image.BICUBIC))
    Image.fromarray(smooth).save(root / "synthetic" / "fake" / "render.png")
    rows = ["relpath\tlabel\tkind\tsource_repo\tcommit\tsource_path\tsha256"]
    rows += [
        "synthetic/real/photo.jpg\treal\tcamera photo\tx/y\t0\tp.jpg\t0",
        "synthetic/fake/render.png\tfake\tupscaled render (test)\tx/y\t0\tr.png\t0",
    ]
    (root / "INDEX.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_suite_runs_end_to_end_and_its_metrics_match_scikit_learn(two_items: Path, tmp_path: Path) -> None:
    config = SuiteConfig(
        two_items, None, tmp_path / "out", tmp_path / "cache", halves=("report", "calibrate"), baseline=None
    )
    settings = Settings(runtime={"device": "cpu"})
    results = run_dev_suite(settings, config)
    for name in ("metrics.json", "report.md", "roc_synthetic_original.png", "roc_synthetic_matched.png"):
        assert (config.out / name).is_file(), name
    assert (
        json.loads((config.out / "metrics.json").read_text())["variants"]["matched"]["synthetic"]["final"][
            "n"
        ]
        == 2
    )
    rows = [
        r for r in collect_all(read_dev_set(two_items), ("original",), settings, config) if r.error is None
    ]
    assert len(rows) == 2
    y = np.array([r.item.label for r in rows])
    p = np.array([0.5 if r.p is None else r.p for r in rows])
    table = results["variants"]["original"]["synthetic"]["final"]
    assert table["auc"][0] == pytest.approx(roc_auc_score(y, p))
    assert table["ap"][0] == pytest.approx(average_precision_score(y, p))
    assert summarize(rows)["final"]["auc"][0] == table["auc"][0]
    assert "### synthetic, original" in (config.out / "report.md").read_text()
    # the shipped fusion's calibration range of each item, as the tables summarise it
    spans = [r.p_range for r in rows if r.p_range is not None]
    assert spans, "the shipped fusion gives every fused score its range"
    assert table["range_width"][0] == pytest.approx(np.median([hi - lo for lo, hi in spans]), abs=1e-4)
    assert "Calibration range of P(manipulated) (95%" in (config.out / "report.md").read_text()


def test_groups_never_straddle_the_halves_and_every_kind_is_reported() -> None:
    assert group_of("faces_video/real/styletalk__src_feifeili_clip1.mp4") == "feifeili"
    assert group_of("faces_video/real/dreamtalk_mead__W009_front_happy_level3_001.mp4") == "mead_W009"
    assert group_of("faces_video/fake/dreamtalk_metaportrait_sr_male_face_crop.mp4") == "dreamtalk"
    items = [
        DevItem(f"s/{i}.jpg", Path(f"{i}.jpg"), i % 2, "gen" if i % 2 else "cam", "s", f"g{i // 4}")
        for i in range(40)
    ]
    halved = assign_halves(items)
    by_group: dict[str, set[str]] = {}
    for it in halved:
        by_group.setdefault(it.group, set()).add(it.half)
    assert all(len(h) == 1 for h in by_group.values())
    for kind in ("gen", "cam"):
        assert {it.half for it in halved if it.kind == kind} == {"report", "calibrate"}
    single = assign_halves([DevItem("f/a.mp4", Path("a.mp4"), 1, "only", "f", "x")])
    assert single[0].half == "report"


def test_the_shared_dev_set_is_split_as_documented(shared_data: Path) -> None:
    items = read_dev_set(shared_data / "dev", shared_data / "deepfake" / "ffpp_c23")
    assert len(items) == 437
    assert {i.half for i in items if i.kind.startswith("FaceForensics")} == {"report"}
    report = [i for i in items if i.half == "report"]
    assert 0.45 < len(report) / len(items) < 0.6


SOURCES = [
    Source("mead", "o/dreamtalk", "c", ("data/style_clip/video/*.mp4",), (), "real_face_video", "MIT"),
    Source("vasa", "o/vexpress", "c", ("test_samples/vasa-1/10/gt.mp4",), (), "fake_video", "none"),
    Source("pcavs", "o/pcavs", "c", ("misc/Input.zip",), (), "real_face_video", "CC-BY-4.0"),
]


@pytest.mark.parametrize(
    ("repo", "path", "seen"),
    [
        ("o/dreamtalk", "data/style_clip/video/W009_front_happy.mp4", True),  # same folder as a glob
        ("O/DreamTalk", "data/style_clip/video/x.mp4", True),  # GitHub names are case-insensitive
        ("o/dreamtalk", "output_video/ack.mp4", False),  # the same repository's generated clips
        ("o/vexpress", "test_samples/vasa-1/12/gt.mp4", True),  # sibling of a single-file source
        ("o/vexpress", "test_samples/emo/talk_hb/gt.mp4", False),  # another generator's folder
        ("o/pcavs", "misc/Audio_Source.zip:Audio_Source/00015.mp4", True),  # zip member: the zip's folder
        ("o/other", "data/style_clip/video/x.mp4", False),
    ],
)
def test_an_item_is_seen_when_training_drew_on_its_source_folder(repo: str, path: str, seen: bool) -> None:
    assert seen_in_training(repo, path, SOURCES) is seen


def test_the_shared_dev_set_marks_the_sources_training_used(shared_data: Path) -> None:
    items = read_dev_set(shared_data / "dev", shared_data / "deepfake" / "ffpp_c23")
    seen = {i.kind: {j.seen for j in items if j.kind == i.kind} for i in items}
    for kind in ("MEAD studio recording", "VASA-1 talking head", "AniPortrait", "ImageNet photo"):
        assert seen[kind] == {True}, kind
    for kind in ("VoxCeleb2 real clip", "EMO talking head", "StyleTalk", "FaceForensics++ original"):
        assert seen[kind] == {False}, kind
    assert seen["camera photo crop 512x512, noisy high-ISO"] == {False}


def test_the_tables_measure_the_final_score_without_the_seen_sources() -> None:
    """Seen reals that score as very real lift the AUC; the unseen rows leave them out."""

    def row(i: int, label: int, seen: bool, p: float) -> Scored:
        item = DevItem(
            f"v/{i}.mp4",
            Path(f"{i}.mp4"),
            label,
            "gen" if label else "cam",
            "faces_video",
            f"g{i}",
            seen=seen,
        )
        return Scored(item, "original", p, "uncertain")

    rows = [row(i, 1, i < 4, 0.6 + 0.05 * i) for i in range(8)]
    rows += [row(10 + i, 0, True, 0.05) for i in range(8)]  # seen reals: far on the real side
    rows += [row(20 + i, 0, False, 0.5 + 0.04 * i) for i in range(8)]  # unseen reals overlap the fakes
    table = summarize(rows)
    assert table["final"]["n"] == 24
    assert table["unseen"]["reals"]["n"] == 16
    assert table["unseen"]["reals"]["n_fake"] == 8
    assert table["unseen"]["both"]["n"] == 12
    assert table["unseen"]["reals"]["auc"][0] < table["final"]["auc"][0]
    assert table["kinds"]["gen"]["seen"] == "4 of 8"
    assert table["kinds"]["cam"]["seen"] == "8 of 16"
    text = render({"models": {}, "halves": ["report"], "variants": {"original": {"faces_video": table}}})
    assert "| final score, reals of unseen sources only | 16 (8) |" in text
    assert "| final score, both classes of unseen sources | 12 (4) |" in text
    # 8 of 8 unseen reals uncertain: the exact interval's lower end is 0.025 ** (1 / 8)
    assert "Verdicts on real items of unseen sources: uncertain 100.0% [63.1%, 100.0%]" in text
    assert summarize([r for r in rows if not r.item.seen])["unseen"] == {}
    # every fake of a seen source (the dev images): no "both" table, which would have one class
    images = [r for r in rows if r.item.label == 0] + [r for r in rows if r.item.label == 1 and r.item.seen]
    assert set(summarize(images)["unseen"]) == {"reals"}
    assert "both classes of unseen sources" not in render(
        {"models": {}, "halves": ["report"], "variants": {"original": {"synthetic": summarize(images)}}}
    )


def test_each_source_counts_every_accusing_band_with_its_exact_interval() -> None:
    """A real clip in ``likely_manipulated`` is accused, as a fake there is caught; counts shown."""

    def row(i: int, label: int, verdict: str, p: float) -> Scored:
        kind = "gen" if label else "cam"
        item = DevItem(f"v/{i}.mp4", Path(f"{i}.mp4"), label, kind, "faces_video", f"g{i}")
        return Scored(item, "original", p, verdict)

    rows = [row(0, 1, "manipulated", 0.95), row(1, 1, "likely_manipulated", 0.8), row(2, 1, "uncertain", 0.5)]
    rows += [row(10, 0, "likely_manipulated", 0.7)] + [row(11 + i, 0, "authentic", 0.02) for i in range(3)]
    table = summarize(rows)
    kinds = table["kinds"]
    assert kinds["gen"]["hits"] == [2, 3]
    assert kinds["cam"]["hits"] == [1, 4]
    assert kinds["cam"]["accused"] == pytest.approx([0.25, 0.0063, 0.8059], abs=1e-4)  # Clopper-Pearson
    text = render({"models": {}, "halves": ["report"], "variants": {"original": {"faces_video": table}}})
    assert "| cam | 4 | n/a | accused 1 of 4: 25.0% [0.6%, 80.6%] |" in text
    assert "caught 2 of 3: 66.7% [" in text


def test_the_tables_count_ranges_that_reach_past_a_band_boundary() -> None:
    def row(i: int, span: tuple[float, float] | None, crosses: bool) -> Scored:
        item = DevItem(f"v/{i}.mp4", Path(f"{i}.mp4"), i % 2, "k", "faces_video", f"g{i}")
        return Scored(item, "original", 0.5, "uncertain", p_range=span, crosses=crosses)

    rows = [row(0, (0.1, 0.3), False), row(1, (0.4, 0.9), True), row(2, (0.2, 0.8), True)]
    rows.append(row(3, None, False))
    final = summarize(rows)["final"]
    assert final["range_width"][0] == pytest.approx(0.5)  # median of 0.2, 0.5, 0.6; the unranged left out
    assert final["range_crosses"][:1] == [pytest.approx(2 / 3, abs=1e-6)]
    table = {"faces_video": summarize(rows)}
    text = render({"models": {}, "halves": ["report"], "variants": {"original": table}})
    assert "it reaches past a band boundary for 66.7% [" in text


def test_variant_copies_are_matched_squares_and_their_2x_enlargements(
    two_items: Path, face_clip: Path, tmp_path: Path
) -> None:
    import av

    photo = read_dev_set(two_items)[0]
    assert variant_copy(photo, "original", tmp_path) == photo.path
    with (
        Image.open(variant_copy(photo, "matched", tmp_path)) as m,
        Image.open(variant_copy(photo, "upscaled", tmp_path)) as u,
    ):
        assert (m.format, m.size, u.format, u.size) == ("JPEG", (256, 256), "JPEG", (512, 512))
        back = np.asarray(u.convert("RGB").resize((256, 256), Image.BOX), np.float32)
        assert np.abs(back - np.asarray(m.convert("RGB"), np.float32)).mean() < 3.0  # same picture
    clip = DevItem("faces_video/real/clip.mp4", face_clip, 0, "clip", "faces_video", "clip")
    with av.open(str(variant_copy(clip, "upscaled", tmp_path))) as video:
        stream = video.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 512, 512)


def test_greyscale_copies_are_the_matched_squares_without_colour(
    two_items: Path, face_clip: Path, tmp_path: Path
) -> None:
    import av

    from detector.scoring.scope import greyscale

    photo = read_dev_set(two_items)[0]
    with (
        Image.open(variant_copy(photo, "matched", tmp_path)) as m,
        Image.open(variant_copy(photo, "greyscale", tmp_path)) as g,
    ):
        assert (g.format, g.size) == ("JPEG", (256, 256))
        matched, grey = np.asarray(m.convert("RGB")), np.asarray(g.convert("RGB"))
        assert not greyscale(matched)
        assert greyscale(grey)
        luma = np.asarray(m.convert("L"), np.float32)
        assert np.abs(grey.mean(axis=2) - luma).mean() < 3.0  # the same picture, in grey
    clip = DevItem("faces_video/real/clip.mp4", face_clip, 0, "clip", "faces_video", "clip")
    with av.open(str(variant_copy(clip, "greyscale", tmp_path))) as video:
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    assert frames
    assert all(greyscale(f) for f in frames)


def _stable_copy(item: DevItem, variant: str, tmp_path: Path, fmt: str, size: tuple[int, int]) -> Path:
    """``item``'s ``variant`` copy, checked to be the same bytes when built again and of ``fmt`` and
    ``size``."""
    path = variant_copy(item, variant, tmp_path)
    assert path.read_bytes() == variant_copy(item, variant, tmp_path / "again").read_bytes()
    with Image.open(path) as shot:
        assert (shot.format, shot.size) == (fmt, size)
    return path


def test_screenshot_copies_are_the_picture_in_a_feed_post_that_the_scope_limits(
    two_items: Path, tmp_path: Path
) -> None:
    from detector.evaluation.dev_set import SCREENSHOT_SHOWN, SCREENSHOT_SIZE
    from detector.scoring.scope import check_frame

    photo = read_dev_set(two_items)[0]
    path = _stable_copy(photo, "screenshot", tmp_path, "PNG", SCREENSHOT_SIZE)
    with Image.open(path) as shot, Image.open(photo.path) as original:
        frame = np.asarray(shot.convert("RGB"))
        side = min(original.size)
        square = original.convert("RGB").crop(
            (
                (original.width - side) // 2,
                (original.height - side) // 2,
                (original.width + side) // 2,
                (original.height + side) // 2,
            )
        )
    left = (SCREENSHOT_SIZE[0] - SCREENSHOT_SHOWN) // 2
    pasted = frame[140 : 140 + SCREENSHOT_SHOWN, left : left + SCREENSHOT_SHOWN].astype(np.float32)
    shown = np.asarray(square.resize((SCREENSHOT_SHOWN,) * 2, Image.Resampling.BOX), np.float32)
    assert np.abs(pasted - shown).mean() < 6.0  # the same picture
    # a picture with detail up to its borders is what the inset rule takes (one flat at its border
    # is not: see detector/scoring/inset.py)
    textured = tmp_path / "textured.png"
    Image.fromarray(np.random.default_rng(8).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(textured)
    item = DevItem("synthetic/real/textured.png", textured, 0, "noise", "synthetic", "textured")
    with Image.open(variant_copy(item, "screenshot", tmp_path)) as shot:
        assert check_frame(np.asarray(shot.convert("RGB")), inset=True).inset_picture


def test_chat_copies_are_the_whole_picture_in_a_bubble_of_a_messaging_app(
    two_items: Path, tmp_path: Path
) -> None:
    """A second screenshot layout, held out from the inset rule's settings: the whole picture (aspect
    kept), right-aligned in a bubble, a JPEG of a phone screen, the same bytes every time."""
    from detector.evaluation.dev_set import CHAT_SHOWN, CHAT_SIZE, chat

    photo = read_dev_set(two_items)[0]
    _stable_copy(photo, "chat", tmp_path, "JPEG", CHAT_SIZE)
    wide = np.random.default_rng(3).integers(0, 256, (150, 300, 3), dtype=np.uint8)
    for dark in (False, True):
        screen = chat(wide, dark)
        assert screen.shape == (CHAT_SIZE[1], CHAT_SIZE[0], 3)
        right = CHAT_SIZE[0] - 20 - 6  # the bubble's margin and padding
        shown = np.asarray(
            Image.fromarray(wide).resize((CHAT_SHOWN, CHAT_SHOWN // 2), Image.Resampling.BICUBIC)
        )
        top = next(
            t
            for t in range(100, 700)
            if np.array_equal(screen[t, right - CHAT_SHOWN : right - 70], shown[0, :-70])
        )
        pasted = screen[top : top + CHAT_SHOWN // 2 - 30, right - CHAT_SHOWN : right]
        assert np.array_equal(pasted, shown[: CHAT_SHOWN // 2 - 30])  # the whole picture, aspect kept


def test_page_copies_are_the_whole_picture_in_an_article_page_with_a_caption(
    two_items: Path, tmp_path: Path
) -> None:
    """A third screenshot layout (text rows left out of the cut, chosen on its calibrate half): the
    whole picture (aspect kept) in a desktop article page under a headline, with a caption right
    under it; a PNG, the same bytes every time."""
    from detector.evaluation.dev_set import PAGE_SHOWN, PAGE_SIZE, page

    photo = read_dev_set(two_items)[0]
    _stable_copy(photo, "page", tmp_path, "PNG", PAGE_SIZE)
    tall = np.random.default_rng(4).integers(0, 256, (300, 150, 3), dtype=np.uint8)
    for dark in (False, True):
        screen = page(tall, dark)
        assert screen.shape == (PAGE_SIZE[1], PAGE_SIZE[0], 3)
        shown = np.asarray(
            Image.fromarray(tall).resize((PAGE_SHOWN // 2, PAGE_SHOWN), Image.Resampling.BICUBIC)
        )
        assert np.array_equal(screen[190 : 190 + PAGE_SHOWN, 60 : 60 + PAGE_SHOWN // 2], shown)
        assert (
            screen[190 + PAGE_SHOWN + 8 : 190 + PAGE_SHOWN + 26, 60:400] != screen[795, 640]
        ).any()  # caption


def test_card_copies_are_the_whole_picture_across_a_social_posts_card(
    two_items: Path, tmp_path: Path
) -> None:
    """A fourth layout (the card read inside, chosen on its calibrate half): the picture across a
    post's card on a grey page, its corners rounded, text above it and actions under it; a JPEG, the
    same bytes every time."""
    from detector.evaluation.dev_set import CARD_SHOWN, CARD_SIZE, card

    photo = read_dev_set(two_items)[0]
    _stable_copy(photo, "card", tmp_path, "JPEG", CARD_SIZE)
    wide = np.random.default_rng(5).integers(0, 256, (200, 400, 3), dtype=np.uint8)
    for dark in (False, True):
        screen = card(wide, dark)
        assert screen.shape == (CARD_SIZE[1], CARD_SIZE[0], 3)
        shown = np.asarray(
            Image.fromarray(wide).resize((CARD_SHOWN, CARD_SHOWN // 2), Image.Resampling.BICUBIC)
        )
        left = (CARD_SIZE[0] - CARD_SHOWN) // 2
        inner = screen[180 + 16 : 180 + CARD_SHOWN // 2 - 16, left + 16 : left + CARD_SHOWN - 16]
        assert np.array_equal(inner, shown[16:-16, 16:-16])  # the whole picture but its rounded corners
        assert not np.array_equal(screen[180, left], shown[0, 0])  # a rounded corner shows the card


@pytest.mark.parametrize("variant", sorted(IMAGE_ONLY_VARIANTS))
def test_image_only_variants_copy_images_and_no_video(two_items: Path, face_clip: Path, variant: str) -> None:
    """The modern formats and the screenshot layouts have no copy of a video: the suite leaves its clips
    out of their tables."""
    clip = DevItem("faces_video/real/clip.mp4", face_clip, 0, "clip", "faces_video", "clip")
    assert applies(variant, read_dev_set(two_items)[0])
    assert not applies(variant, clip)


@pytest.mark.shared_data
def test_video_copies_are_the_same_bytes_every_time_they_are_built(shared_data: Path, tmp_path: Path) -> None:
    """A rebuilt cache must give the same figures: x264's SIMD code made a dev clip's 96 px copy
    differ in 4 of 4 encodes (the FaceForensics++ original's in 1 of 4), moving the thumbnail rows."""
    import hashlib

    relpath = "faces_video/fake/aniportrait_Aragaki_crop.mp4"
    clip = DevItem(relpath, shared_data / "dev" / relpath, 1, "AniPortrait", "faces_video", "g")
    built = {
        hashlib.sha256(variant_copy(clip, "thumbnail", tmp_path / str(i)).read_bytes()).digest()
        for i in range(6)
    }
    assert len(built) == 1


def test_degraded_variants_are_what_the_scope_calls_degraded(two_items: Path, tmp_path: Path) -> None:
    """``thumbnail`` and ``heavy`` copies carry the scope's degraded reasons, as a user's file would
    (an 8 s clip: the dev clips are 4-8 s; a 2 s one of a moving photo sits right at the limit)."""
    from detector.media.loader import MediaLoader
    from detector.media.sampling import FrameSampler
    from detector.scoring.scope import assess

    loader = MediaLoader()
    photo = read_dev_set(two_items)[0]
    face_clip = mediagen.write_face_clip(tmp_path / "face8s.mp4", n_frames=200, fps=25, size=(480, 360))
    clip = DevItem("faces_video/real/clip.mp4", face_clip, 0, "clip", "faces_video", "clip")
    expected = {
        ("thumbnail", "photo"): "a tiny picture",
        ("heavy", "photo"): "heavy JPEG compression",
        ("thumbnail", "clip"): "a tiny picture",
        ("heavy", "clip"): "heavily compressed video",
        ("webp", "photo"): "heavy WebP compression",
        ("avif", "photo"): "heavy AVIF compression",
        ("heic", "photo"): "heavy HEIC compression",
    }
    for (variant, which), reason in expected.items():
        media = loader.load(variant_copy(photo if which == "photo" else clip, variant, tmp_path))
        side = 96 if variant == "thumbnail" else 256
        assert (media.info.width, media.info.height) == (side, side)
        frames = [f.image for f in FrameSampler(loader=loader).sample(media, 4).frames]
        degraded = assess(media.info, frames, [], 49.0).degraded
        assert [r.split(" (")[0] for r in degraded] == [reason], (variant, which, degraded)
    with Image.open(variant_copy(photo, "avif", tmp_path)) as avif:
        assert (avif.format, avif.size) == ("AVIF", (256, 256))
    with Image.open(variant_copy(photo, "heic", tmp_path)) as heic:
        assert (heic.format, heic.size) == ("HEIF", (256, 256))
    with pytest.raises(ValueError, match="no copy of a video"):
        variant_copy(clip, "webp", tmp_path)
    with pytest.raises(ValueError, match="unknown variant"):
        variant_copy(photo, "sideways", tmp_path)


def _heldout_names(count: int) -> tuple[list[str], str]:
    """``count`` UTKFace-style names the audit holds out of training, and one it does not."""
    from datasets.face_training import is_audit_face

    held, kept = [], ""
    for i in range(1000):
        name = f"{30 + i % 40}_{i % 2}_{i % 5}_20170116{i:06d}.jpg.chip.jpg"
        if is_audit_face(f"utkface/{name.split('.')[0]}"):
            held.append(name)
        elif not kept:
            kept = name
        if len(held) == count and kept:
            return held, kept
    raise AssertionError("no held-out names found")


def test_face_stills_rows_cover_dev_faces_and_held_out_real_faces(two_items: Path, tmp_path: Path) -> None:
    """Images showing a face get their own rows; held-out real faces (and only those) join the fakes."""
    utk = tmp_path / "utk"
    utk.mkdir()
    held, trained_on = _heldout_names(2)
    photo = mediagen.face_photo()
    for i, name in enumerate([*held, trained_on]):
        chip = photo[20 + 10 * i : 260 + 10 * i, 130 + 5 * i : 370 + 5 * i]  # around the astronaut's face
        Image.fromarray(chip).resize((200, 200)).save(utk / name, quality=90)
    photos = tmp_path / "photos"
    (photos / "press").mkdir(parents=True)
    Image.fromarray(photo).save(photos / "astronaut.png")
    Image.fromarray(photo[:300, 100:400]).save(photos / "press" / "crop.JPG", quality=85)
    (photos / "VERIFY.tsv").write_text("not a photo\n", encoding="utf-8")
    config = SuiteConfig(
        two_items,
        None,
        tmp_path / "out",
        tmp_path / "cache",
        ("original",),
        ("report", "calibrate"),
        baseline=None,
        real_faces=utk,
        face_photos=photos,
    )
    settings = Settings(runtime={"device": "cpu"})
    results = run_dev_suite(settings, config)
    assert results["heldout_faces"] == 2  # the face training saw is not an independent real
    assert results["face_photos"] == 2  # the nested photo is found, the text file is not
    stills = results["variants"]["original"]["synthetic"]["face_stills"]
    rows = [
        r for r in collect_all(read_dev_set(two_items), ("original",), settings, config) if r.error is None
    ]
    with_face = [r for r in rows if r.error is None and r.raw_face is not None]
    assert with_face, "the astronaut's face is found in the dev items"
    assert stills["dev"]["n"] == len(with_face)
    fakes = [r for r in with_face if r.item.label == 1]
    heldout = collect_all(heldout_face_items(utk), ("original",), settings, config)
    assert {r.item.path.name for r in heldout} == set(held)
    assert stills["heldout"]["n"] == len(fakes) + 2
    assert fakes, "the generated-like render shows the face too"
    y = np.array([1] * len(fakes) + [0] * len(heldout))
    p = np.array([r.p for r in fakes] + [0.5 if r.p is None else r.p for r in heldout])
    assert stills["heldout"]["auc"][0] == pytest.approx(roc_auc_score(y, p))
    assert "held-out real UTKFace faces" in (config.out / "report.md").read_text()
    shots = collect_all(face_photo_items(photos), ("original",), settings, config)
    assert {r.item.relpath for r in shots} == {"face_photos/astronaut.png", "face_photos/press/crop.JPG"}
    assert stills["photos"]["n"] == len(fakes) + 2
    y = np.array([1] * len(fakes) + [0] * len(shots))
    p = np.array([r.p for r in fakes] + [0.5 if r.p is None else r.p for r in shots])
    assert stills["photos"]["auc"][0] == pytest.approx(roc_auc_score(y, p))
    assert "real face photos no model trained on" in (config.out / "report.md").read_text()


def test_evaluate_finds_staged_faces_or_says_it_skips_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.cli.audit import STAGED_UTKFACE
    from serving.cli.evaluate import _face_photos, _real_faces

    monkeypatch.chdir(tmp_path)
    assert _real_faces(None) is None
    assert "skipped" in capsys.readouterr().out
    assert _real_faces(Path("")) is None
    (tmp_path / STAGED_UTKFACE).mkdir(parents=True)
    assert _real_faces(None) == STAGED_UTKFACE
    assert _real_faces(Path("elsewhere")) == Path("elsewhere")
    assert _face_photos(Path("")) is None
    assert _face_photos(tmp_path / "missing") is None
    assert "skipped (no folder" in capsys.readouterr().out
    assert _face_photos(tmp_path) == tmp_path


def test_calibrate_compares_every_aggregation_rule_on_videos_only(two_items: Path, tmp_path: Path) -> None:
    """``trueframe calibrate`` prints the video-level AUC of the raw face and synthetic-image
    evidence under each rule the settings offer; images are left out (every rule gives an image
    the same logit), so adding one changes nothing."""
    from detector.evaluation.calibrate import compare_rules, raw_features
    from detector.evaluation.runner import outputs_of

    clips = []
    for label, size in ((0, (320, 240)), (1, (352, 256))):
        path = mediagen.write_face_clip(tmp_path / f"clip{label}.mp4", n_frames=25, size=size)
        clips.append(DevItem(path.name, path, label, "test clip", "faces_video", path.stem))
    photo = DevItem("photo.jpg", two_items / "synthetic" / "real" / "photo.jpg", 0, "photo", "synthetic", "p")
    config = SuiteConfig(two_items, None, tmp_path / "out", tmp_path / "cache", baseline=None)
    settings = Settings(runtime={"device": "cpu"}, sampling={"frames": 6})
    outputs, analysed = outputs_of([*clips, photo], ("original",), settings, config)
    assert [i.relpath for i in analysed] == ["clip0.mp4", "clip1.mp4", "photo.jpg"]
    labels = [i.label for i in analysed]
    rules = compare_rules(outputs, labels, settings)
    assert set(rules["face"]) == set(rules["synthetic"]) == {"mean", "confident", "top"}
    assert compare_rules(outputs[:2], labels[:2], settings) == rules
    # the rule really reaches the evidence compared: the top crops' mean is above the mean of all
    by_rule = {}
    for rule in ("mean", "top"):
        update = {"track_rule": rule, "synthetic_rule": rule, "top_share": 0.2}
        fusion = settings.fusion.model_copy(update=update)
        by_rule[rule] = raw_features(outputs[:2], labels[:2], settings.model_copy(update={"fusion": fusion}))
    for signal in ("face", "synthetic"):
        top, mean = getattr(by_rule["top"], signal), getattr(by_rule["mean"], signal)
        assert np.all(top >= mean - 1e-9), signal
        assert np.any(top > mean + 1e-6), signal


def test_the_audit_leaves_out_faces_it_could_not_analyse(tmp_path: Path) -> None:
    """A file that fails to analyse is no real face the service judged: counting it as "not accused"
    would lower every false-positive rate (the walkthrough's truncated JPEG did)."""
    from detector.evaluation.audit import render_audit, run_audit

    utk = tmp_path / "utk"
    utk.mkdir()
    (good, broken), _ = _heldout_names(2)
    photo = mediagen.face_photo()
    Image.fromarray(photo[20:260, 130:370]).resize((200, 200)).save(utk / good, quality=90)
    (utk / broken).write_bytes((utk / good).read_bytes()[:3000])  # truncated JPEG
    result = run_audit(Settings(runtime={"device": "cpu"}), utk, tmp_path / "cache", tmp_path / "out")
    assert result["n"] == 1
    assert [Path(f["path"]).name for f in result["failed"]] == [broken]
    assert sum(row["n"] for row in result["attributes"]["age"]["groups"].values()) == 1
    text = render_audit(result)
    assert "1 held-out real UTKFace faces (1 more could not be analysed and are left out)" in text
    assert "undefined (no group of 20+)" in text
    assert json.loads((tmp_path / "out" / "audit.json").read_text())["failed"][0]["error"]
