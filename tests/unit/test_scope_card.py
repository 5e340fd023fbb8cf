"""A picture inside a post's card on a page (:func:`detector.scoring.inset.nested`): the card is not the
page's colour, so the page's canvas ends at the card; the cut is read again inside it."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from detector.evaluation.dev_set import CARD_SHOWN, CARD_SIZE, card, chat, page
from detector.scoring.fusion.text import NOT_PHOTOGRAPHIC
from detector.scoring.scope import BLOCK, check_frame, inset_box, inset_picture
from tests.support.scope import encoded, scope_of

PHOTO = "synthetic/real/kodak24/kodim05.png"  # 768x512: across the card's width
WASHER = "dev/synthetic/real/imagenet__n04554684_washer.JPEG"  # a photo of few colours
INSET = "a picture inset in a flat canvas"


@pytest.fixture(scope="module")
def photo(shared_data: Path) -> np.ndarray:
    with Image.open(shared_data / PHOTO) as im:
        return np.asarray(im.convert("RGB"))


def _card_box(check_shape: tuple[int, int], pixels: np.ndarray) -> tuple[int, int, int, int]:
    """Where card() pastes ``pixels``: top, left, bottom and right."""
    h, w = pixels.shape[:2]
    scale = CARD_SHOWN / max(h, w)
    shown_h, shown_w = round(h * scale), round(w * scale)
    left = (CARD_SIZE[0] - CARD_SHOWN) // 2 + (CARD_SHOWN - shown_w) // 2
    assert check_shape == (CARD_SIZE[1], CARD_SIZE[0])
    return 180, left, 180 + shown_h, left + shown_w  # card(): the card's top at 60, the picture 120 below


def _page_cut(frame: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int, int, int] | None:
    """The cut of ``frame``'s page-level inset alone: what it was before a card was read inside."""
    with monkeypatch.context() as patch:
        patch.setattr("detector.scoring.scope.nested", lambda flat, means, outer: outer)
        return inset_box(check_frame(frame, inset=True))


@pytest.mark.parametrize("dark", [False, True])
@pytest.mark.parametrize("portrait", [False, True])
def test_a_cards_picture_is_cut_without_the_cards_text_and_margins(
    photo: np.ndarray, dark: bool, portrait: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the dev suite's card layout (calibrate half) every cut held the card's header and actions
    before; with the card read inside, 152 of 175 cuts lie within the picture (for a picture whose
    border is as white as the card, see the last test)."""
    pixels = np.ascontiguousarray(np.rot90(photo)) if portrait else photo
    shot = card(pixels, dark)
    check = check_frame(shot, inset=True)
    assert check.inset_picture
    top, left, bottom, right = _card_box(check.shape, pixels)
    page_cut = _page_cut(shot, monkeypatch)
    assert page_cut is not None
    assert page_cut[0] < top - 60
    box = inset_box(check)
    assert box is not None
    r0, c0, r1, c1 = box
    assert top <= r0 < r1 <= bottom
    assert left <= c0 < c1 <= right
    trimmed = 2 * 3 * BLOCK * 2  # at most three blocks of 16 px off each side
    assert r1 - r0 >= bottom - top - trimmed
    assert c1 - c0 >= right - left - trimmed
    assert inset_picture(shot, check).shape[:2] == (r1 - r0, c1 - c0)


def test_a_picture_whose_own_flat_sky_meets_one_of_its_sides_is_not_cut_inside() -> None:
    """A night photo on a page: its black sky meets the picture's top, so read inside, the city below
    is a region with straight sides, but only one of them lies inside the picture; the cut stays the
    photo (without that rule, 1 real page copy of the dev suite was cut to its bottom half). Its flat
    black sky and flat grey road are no card's margins either, so no row of its sky is cut off."""
    rng = np.random.default_rng(0)
    night = rng.integers(40, 200, (480, 640, 3), dtype=np.uint8)
    rows, columns = np.arange(480)[:, None], np.arange(640)[None, :]
    night[rows < 150 + 40 * np.sin(columns / 29.0)] = 0  # a flat black sky over a ragged skyline
    night[rows > 420 + 20 * np.sin(columns / 23.0)] = 90  # a flat grey road along the bottom
    page = np.full((800, 1000, 3), 250, np.uint8)
    page[150:630, 180:820] = night
    check = check_frame(page, inset=True)
    assert check.inset_picture
    box = inset_box(check)
    assert box is not None
    assert box[0] < 150 + 3 * BLOCK  # the sky is kept: the cut starts at the picture's top
    assert inset_picture(page, check).shape[0] == box[2] - box[0]  # all of its rows


@pytest.mark.parametrize("layout", [chat, page])
def test_a_letterboxed_photo_in_a_bubble_or_a_page_is_cut_without_its_bars(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, layout: Callable[[np.ndarray, bool], np.ndarray]
) -> None:
    """The ImageNet cash machine has black bars on both sides. Alone it is cut to the photo between
    them; shown in a chat's bubble (at the screen's edge) or on a page, the bars are the card: they were
    judged with it until the card was read inside."""
    with Image.open(shared_data / "dev/synthetic/real/imagenet__n02977058_cash_machine.JPEG") as im:
        shot = layout(np.asarray(im.convert("RGB")), False)

    def black_columns(box: tuple[int, int, int, int] | None) -> int:
        assert box is not None
        cut = shot[box[0] : box[2], box[1] : box[3]]
        return int((np.median(cut.max(axis=2), axis=0) < 30).sum())  # mostly black: a bar

    assert black_columns(_page_cut(shot, monkeypatch)) > 50
    assert black_columns(inset_box(check_frame(shot, inset=True))) == 0


@pytest.mark.parametrize("dark", [False, True])
def test_a_photo_in_a_large_flat_card_is_judged_not_called_a_drawing(shared_data: Path, dark: bool) -> None:
    """The washer's photo in a card: the page and the card make three quarters of the blocks flat, and
    the whole image has few colours, so it read as a drawing and got no score (11 copies of the card
    layout's calibrate half, 8 of them real; 6 in each other layout). Its picture reads as a photo, so
    it is judged, limited as an inset."""
    with Image.open(shared_data / WASHER) as im:
        data = encoded(Image.fromarray(card(np.asarray(im.convert("RGB")), dark)), "JPEG", quality=85)
    with Image.open(io.BytesIO(data)) as im:
        assert not check_frame(np.asarray(im.convert("RGB")), inset=True).photographic  # the whole image
    scope = scope_of(data)
    assert scope.out_of_scope == []
    assert any(r.startswith(INSET) for r in scope.limited), scope.limited


def test_a_drawing_in_a_card_is_still_out_of_scope() -> None:
    """The picture cut out of the card is what must read as a photo: a flat cartoon does not."""
    cartoon = np.full((450, 600, 3), (250, 220, 120), np.uint8)
    cv2.circle(cartoon, (300, 200), 120, (40, 120, 200), -1)  # flat shapes, no anti-aliasing
    cv2.rectangle(cartoon, (60, 330), (540, 420), (90, 160, 60), -1)
    scope = scope_of(encoded(Image.fromarray(card(cartoon, False)), "PNG"))
    assert scope.out_of_scope == [NOT_PHOTOGRAPHIC]


def test_a_card_whose_picture_has_a_white_border_is_cut_without_its_header_and_actions(
    photo: np.ndarray,
) -> None:
    """A picture whose white sky meets the card's white along a ragged horizon is no inset inside the
    card, so the cut is the card's; rows of the card's own colour (its margins above and below the
    cut) still separate its header and actions from the picture (23 of the card layout's 175
    calibrate-half copies, whose generated pictures read weaker with them: median logit 1.3 against
    2.1 for the picture alone)."""
    pixels = photo.copy()
    columns = np.arange(pixels.shape[1])
    horizon = (120 + 40 * np.sin(columns / 37.0)).astype(int)  # ragged: no straight side
    pixels[np.arange(pixels.shape[0])[:, None] < horizon[None, :]] = 255
    shot = card(pixels, dark=False)
    check = check_frame(shot, inset=True)
    top, _, bottom, _ = _card_box(check.shape, pixels)
    box = inset_box(check)
    assert box is not None
    assert box[0] < top - 60  # the card's box: its avatar and text above the picture
    assert box[2] > bottom + 30  # and its actions below
    cut = inset_picture(shot, check)
    assert np.shares_memory(cut, shot)
    cut_top = (cut.ctypes.data - shot.ctypes.data) // shot.strides[0]  # the view's first row
    # below the card's text; the picture's rows of pure white sky (its first 80) go with the margin
    assert top - 8 <= cut_top <= top + 80 + 8
    assert bottom - 16 <= cut_top + cut.shape[0] <= bottom + 8  # the picture's last rows, no actions
