"""A picture inset in a flat canvas (:mod:`detector.scoring.inset`): screenshots are limited, camera
photos with large flat areas are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detector.evaluation.dev_set import SCREENSHOT_SHOWN, screenshot
from detector.media.loader import MediaLoader
from detector.scoring.inset import canvas_blocks, measure
from detector.scoring.scope import Scope, assess, check_frame
from tests.support import mediagen
from tests.support.scope import encoded, scope_of

INSET = "a picture inset in a flat canvas"

# the camera photos of ../shared/data with the most flat blocks (0.61-0.89 of them; a clipped sky, studio
# backdrops): none is an inset
FLAT_PHOTOS = (
    "c2pa/no_manifest/c2pa-rs__no_manifest_jumbf_removed.jpg",
    "faces/celeba_wild_via_deepfacelive/000086.jpg",
    "faces/deepface/tests/unit/dataset/img14.jpg",
    "faces/deepface/tests/unit/dataset/img13.jpg",
    "synthetic/real/sun_hays80/lighthouse_sun_akeqnxvbhbktajfl.jpg",
    "dev/synthetic/real/imagenet__n02783161_ballpoint.JPEG",
)
# the five of ../shared/data's 1,453 images the rule takes (detector/scoring/inset.py)
TAKEN = (
    "faces/celeba_wild_via_deepfacelive/000024.jpg",  # a photo printed on a card, on a backdrop
    "synthetic/real/bsds500/train/59078.jpg",  # pillarboxed by black bars
    "dev/synthetic/real/imagenet__n02977058_cash_machine.JPEG",  # letterboxed by black bars
    "dev/synthetic/real/imagenet__n04023962_punching_bag.JPEG",  # a product shot on white
    "faces/ulfd_masked/img2.jpeg",  # ten portraits on a white page: a collage (since the canvas's colour)
)
PHOTO = "synthetic/real/kodak24/kodim05.png"


def _scope_of_face(data: bytes) -> Scope:
    """The scope with a 200 px face found."""
    return scope_of(data, [200.0])


def _screenshot(photo: Image.Image, dark: bool) -> Image.Image:
    """The dev suite's feed post (:func:`detector.evaluation.dev_set.screenshot`) showing ``photo``'s
    centre square."""
    side = min(photo.size)
    left, top = (photo.width - side) // 2, (photo.height - side) // 2
    square = photo.crop((left, top, left + side, top + side)).resize(
        (SCREENSHOT_SHOWN,) * 2, Image.Resampling.BOX
    )
    return Image.fromarray(screenshot(np.asarray(square), dark))


@pytest.fixture(scope="module")
def photo(shared_data: Path) -> Image.Image:
    with Image.open(shared_data / PHOTO) as im:
        return im.convert("RGB")


@pytest.mark.parametrize("dark", [False, True])
def test_a_screenshot_of_a_photo_is_limited_as_png_and_as_jpeg_and_the_photo_is_not(
    photo: Image.Image, dark: bool
) -> None:
    shot = _screenshot(photo, dark)
    # the picture is 44% of the canvas; in the JPEG, ringing joins the lines of text above it to its region
    for data, share in (
        (encoded(shot, "PNG"), 45),
        (encoded(shot, "JPEG", quality=85), 62 if dark else 61),
    ):
        scope = _scope_of_face(data)
        assert scope.out_of_scope == []  # the photo's colours keep it from reading as a drawing
        assert [r for r in scope.limited if r.startswith(INSET)] == [
            f"a picture inset in a flat canvas, such as a screenshot (the picture fills about {share}%; "
            "the synthetic-image model judged the picture cut out of it)"
        ]
        assert scope.degraded == []  # one step, not the degraded rule
    assert not any(r.startswith(INSET) for r in _scope_of_face(encoded(photo, "PNG")).limited)


@pytest.mark.parametrize("name", FLAT_PHOTOS)
def test_camera_photos_with_large_flat_areas_are_not_insets(shared_data: Path, name: str) -> None:
    with Image.open(shared_data / name) as im:
        frame = np.asarray(im.convert("RGB"))
    check = check_frame(frame, inset=True)
    assert check.flat_share > 0.1  # the case the rule must not take for a screenshot
    assert not check.inset_picture, check.inset


@pytest.mark.parametrize("name", TAKEN)
def test_the_pictures_of_the_shared_data_the_rule_takes(shared_data: Path, name: str) -> None:
    """The known takes (see the module docstring): pictures in a canvas, and one product shot."""
    with Image.open(shared_data / name) as im:
        assert check_frame(np.asarray(im.convert("RGB")), inset=True).inset_picture


@pytest.mark.parametrize(("fmt", "quality"), [("JPEG", 70), ("WEBP", 80)])
def test_a_recompressed_screenshot_is_still_an_inset(shared_data: Path, fmt: str, quality: int) -> None:
    """Compression ringing around the pasted picture made a sparse line of non-flat blocks outside
    its side; the side's straightness is read one line further in as well (with the edge line
    alone, this screenshot was missed in both formats)."""
    with Image.open(shared_data / "synthetic/real/kodak24/kodim04.png") as im:
        photo = im.convert("RGB")
    scope = _scope_of_face(encoded(_screenshot(photo, dark=False), fmt, quality=quality))
    assert any(r.startswith(INSET) for r in scope.limited), scope.limited


@pytest.mark.parametrize("dark", [False, True])
def test_a_picture_with_flat_patches_of_its_own_on_its_border_is_still_an_inset(
    photo: Image.Image, dark: bool
) -> None:
    """Before the canvas was told by its colour, every flat block counted as canvas, so a picture with a
    smooth sky or a plain backdrop along its border lost its straight sides and was judged whole, canvas
    and all (184 of the dev suite's 660 screenshot copies; generated pictures have more such patches)."""
    pixels = np.array(photo)
    side = min(pixels.shape[:2])
    pixels[: side // 3, :] = (120, 170, 220)  # a flat sky along the top of the picture
    pixels[:, : side // 4] = (200, 180, 150)  # and a plain wall along its left side
    shot = _screenshot(Image.fromarray(pixels), dark)
    check = check_frame(np.asarray(shot), inset=True)
    assert check.inset is not None
    assert check.inset.fill > 0.95  # the flat patches belong to the picture, not to the canvas
    assert check.inset_picture
    assert any(r.startswith(INSET) for r in _scope_of_face(encoded(shot, "PNG")).limited)


def test_the_canvas_is_the_borders_flat_colours_joined_to_the_border() -> None:
    flat = np.ones((8, 10), bool)
    means = np.full((8, 10, 3), 255.0)  # a white page, two blocks wide around the picture
    means[2:6, 2:8] = (90, 140, 200)  # a picture, flat inside (a clear sky) ...
    flat[3, 4] = False  # ... but for one block
    means[4, 6] = 254.0  # a white patch in it: white, flat, but not joined to the page
    means[1, 3] = 252.0  # the page a few levels off (re-encoded): still the page
    means[1, 6] = 240.0  # a flat block of another grey inside the page: not the page's colour
    canvas = canvas_blocks(flat, means)
    assert canvas[0].all()
    assert canvas[:, 0].all()
    assert not canvas[2:6, 2:8].any()
    assert canvas[1, 3]
    assert not canvas[1, 6]
    assert not canvas_blocks(np.zeros((8, 10), bool), means).any()  # no flat block on the border


def test_a_picture_padded_with_exactly_flat_bars_is_an_inset(photo: Image.Image) -> None:
    """By design (detector/scoring/inset.py): a padded square post or a frame grab with black bars
    shows the picture in a canvas too."""
    pixels = np.asarray(photo)
    letterbox = np.zeros((pixels.shape[0] + 200, pixels.shape[1], 3), np.uint8)
    letterbox[100:-100] = pixels
    pillarbox = np.full((pixels.shape[0], pixels.shape[1] + 200, 3), 255, np.uint8)
    pillarbox[:, 100:-100] = pixels
    for padded in (letterbox, pillarbox):
        check = check_frame(padded, inset=True)
        assert check.inset is not None
        assert check.inset.sides == 2
        assert check.inset_picture


def test_the_region_must_be_straight_sided_and_away_from_at_least_two_frame_edges() -> None:
    flat = np.ones((60, 40), bool)
    flat[10:40, 5:35] = False  # a pasted rectangle
    inset = measure(flat)
    assert inset is not None
    assert inset.inset
    assert (inset.cover, inset.fill, inset.sides, inset.ring_canvas, inset.edge) == (0.375, 1.0, 4, 1.0, 1.0)
    rows, cols = np.mgrid[:60, :40]
    disc = (rows - 30) ** 2 + (cols - 20) ** 2 < 15**2  # flat around an irregular region: a backdrop
    blob = measure(~disc)
    assert blob is not None
    assert blob.fill > 0.6  # filled enough: only its sides tell it from a pasted picture
    assert blob.edge < 0.8
    assert not blob.inset
    chat = np.ones((60, 40), bool)
    chat[10:40, 5:35] = False  # a picture's bubble ...
    chat[40:44, 15:35] = False  # ... and a narrower bubble of text right below it
    attached = measure(chat)
    assert attached is not None
    assert attached.inset
    assert attached.box == (10, 5, 30, 30)  # the text bubble peeled off
    sky = np.zeros((60, 40), bool)
    sky[:20] = True  # a clipped sky above the scene: one side away from the frame's edges
    above = measure(sky)
    assert above is not None
    assert above.sides == 1
    assert not above.inset
    assert measure(np.zeros((60, 40), bool)) is None
    assert measure(np.ones((60, 40), bool)) is None


def test_a_video_of_inset_frames_is_not_limited_by_it(tmp_path: Path) -> None:
    """The rule is for images: the video fusion reads faces, and letterboxed clips are common."""
    frames = []
    for i in range(6):
        frame = np.full((240, 320, 3), 255, np.uint8)
        frame[40:200, 40:280] = mediagen.face_frame(i, 6, (240, 160))
        frames.append(frame)
    assert check_frame(frames[0], inset=True).inset_picture
    assert check_frame(frames[0]).inset is None  # a video's frames are not read for it
    clip = mediagen.write_clip(tmp_path / "inset.mp4", frames).read_bytes()
    assert not any(r.startswith(INSET) for r in _scope_of_face(clip).limited)


def test_a_face_just_under_the_judged_size_is_not_said_to_be_as_large_as_needed() -> None:
    """A 39.6 px face against the model's 40 read "largest 40 px; the face model needs 40"."""
    frame = mediagen.face_photo()
    info = MediaLoader().load(encoded(Image.fromarray(frame), "PNG")).info
    scope = assess(info, [frame], [39.6], 40.0)
    assert scope.limited == ["faces too small to judge (largest 39 px; the face model needs 40)"]


@pytest.mark.parametrize("dark", [False, True])
def test_the_synthetic_model_judges_the_picture_cut_out_of_its_canvas(photo: Image.Image, dark: bool) -> None:
    """The cut holds the picture's pixels only (no bar, text or canvas) and most of them; a photo that
    is no inset is judged whole."""
    from detector.scoring.scope import INSET_TRIM, inset_box, inset_picture

    shot = np.asarray(_screenshot(photo, dark))
    top, left = 140, (shot.shape[1] - SCREENSHOT_SHOWN) // 2  # where screenshot() pastes the picture
    check = check_frame(shot, inset=True)
    box = inset_box(check)
    assert box is not None
    r0, c0, r1, c1 = box
    assert top <= r0 < r1 <= top + SCREENSHOT_SHOWN
    assert left <= c0 < c1 <= left + SCREENSHOT_SHOWN
    assert min(r1 - r0, c1 - c0) >= SCREENSHOT_SHOWN - 2 * (INSET_TRIM + 1) * 8
    assert np.array_equal(inset_picture(shot, check), shot[r0:r1, c0:c1])
    with pytest.raises(ValueError, match="cannot cut"):
        inset_picture(shot[:-8], check)  # another frame's check: its box would be meaningless here
    pixels = np.asarray(photo)
    assert inset_picture(pixels, check_frame(pixels, inset=True)) is pixels
    assert inset_picture(pixels, None) is pixels


@pytest.mark.parametrize("dark", [False, True])
def test_a_chat_screenshot_is_cut_to_its_picture_though_a_bubble_of_text_touches_it(
    photo: Image.Image, dark: bool
) -> None:
    """The dev suite's chat layout (:func:`detector.evaluation.dev_set.chat`): the bubble of text right
    below the picture's bubble joins it into one region whose lower side is not straight; before the
    sides were peeled, the rule missed 160 of the calibrate half's 175 chat copies (and the report
    half's likewise), and the screenshot was judged whole."""
    from detector.evaluation.dev_set import CHAT_SHOWN, chat
    from detector.scoring.scope import inset_box

    pixels = np.asarray(photo)
    shot = chat(pixels, dark)
    check = check_frame(shot, inset=True)
    assert check.inset_picture, check.inset
    box = inset_box(check)
    assert box is not None
    r0, c0, r1, c1 = box
    height = round(pixels.shape[0] * CHAT_SHOWN / max(pixels.shape[:2]))
    right = shot.shape[1] - 20 - 6  # chat(): the bubble's margin and padding
    rows = np.flatnonzero((shot[:, right - 40 : right] != shot[:, right + 3 : right + 4]).any(axis=(1, 2)))
    top = int(rows[(rows > 250) & (rows < 300)].min())  # the picture's first row, under two bubbles
    assert top <= r0 < r1 <= top + height  # only picture rows: not the bubble of text below it
    assert right - CHAT_SHOWN <= c0 < c1
    # the bubble ends 20 px from the screen's edge, inside the last whole block (16 px at stride 2):
    # that side counts as the frame's and is not trimmed, so the cut keeps a strip of padding and wallpaper
    assert c1 - right <= 16
    assert r1 - r0 >= height - 6 * 8 * 2  # most of the picture (stride 2, trimmed on both sides)


@pytest.mark.parametrize("dark", [False, True])
def test_a_page_screenshot_is_cut_below_the_lines_of_text_set_right_above_the_picture(
    photo: Image.Image, dark: bool
) -> None:
    """The dev suite's page layout (:func:`detector.evaluation.dev_set.page`): a headline and a line of
    text lie within a block of the picture and are as wide as it, so its box starts at the headline;
    before the cut was read in the pixels, the synthetic-image model judged them as the picture's top
    rows (the generated pictures' median logit 3.41 alone, 2.33 with them)."""
    from detector.evaluation.dev_set import page
    from detector.scoring.scope import inset_box, inset_picture

    shot = page(np.asarray(photo), dark)
    check = check_frame(shot, inset=True)
    box = inset_box(check)
    assert box is not None
    assert box[0] < 180  # the blocks' box takes the lines of text above the picture
    cut = inset_picture(shot, check)
    top = box[2] - cut.shape[0]  # the cut keeps the box's bottom, left and right
    assert top == 190  # page(): where the picture starts
    assert np.array_equal(cut, shot[190 : box[2], box[1] : box[3]])


def test_a_picture_too_small_to_judge_alone_is_judged_whole(shared_data: Path) -> None:
    """The ImageNet product shot on white is an inset whose picture (the product) would cut to a
    144x32 strip: the whole image is judged, and the reason says so."""
    from detector.scoring.scope import inset_box, inset_picture

    path = shared_data / TAKEN[3]
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB"))
    check = check_frame(pixels, inset=True)
    assert check.inset_picture
    assert inset_box(check) is None
    assert inset_picture(pixels, check) is pixels
    (reason,) = [r for r in _scope_of_face(path.read_bytes()).limited if r.startswith(INSET)]
    assert reason.endswith("judged the whole image: the picture is too small to judge alone)")
