"""``trueframe provenance`` shows a still image's invisible watermark, as ``analyze`` finds it (a
walkthrough's watermarked Stable Diffusion image showed only "No Content Credentials")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from serving.cli import main
from tests.support import mediagen


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("marks")
    photo = mediagen.face_photo()
    paths = {"marked": folder / "marked.png", "plain": folder / "plain.png", "cut": folder / "cut.png"}
    Image.fromarray(np.ascontiguousarray(mediagen.sd_marked(photo))).save(paths["marked"])
    Image.fromarray(photo).save(paths["plain"])
    paths["cut"].write_bytes(paths["plain"].read_bytes()[:2000])  # header intact, pixels cut off
    return paths


def test_the_card_names_a_watermark_found_in_the_pixels(
    photos: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["provenance", str(photos["marked"]), str(photos["plain"])]) == 0
    marked, plain = capsys.readouterr().out.split(str(photos["plain"]))
    assert "Invisible watermark: stable-diffusion-v1 (136 bits" in marked
    assert "Invisible watermark" not in plain


def test_the_json_line_carries_the_watermark(
    photos: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["provenance", "--json", str(photos["marked"])]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["provenance"]["watermark"]["scheme"] == "stable-diffusion-v1"


def test_pixels_that_cannot_be_decoded_still_get_their_card_with_a_warning(
    photos: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["provenance", str(photos["cut"])]) == 0
    out = capsys.readouterr().out
    assert "Content Credentials:" in out  # the card itself
    assert "warning: pixels not searched for an invisible watermark:" in out
