"""Invisible watermarks: found on an image the test watermarks with the package, absent on the original,
and decisive in fusion as a stated rule."""

from __future__ import annotations

import numpy as np
import pytest

from detector.provenance.watermark import SDXL_MESSAGE, block_bits, decode_bits, find_watermark
from tests.support import mediagen
from tests.support.provenance_fixtures import sd_parameters


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return mediagen.face_photo()


def test_stable_diffusion_v1_mark_is_found_and_the_original_is_clean(photo: np.ndarray) -> None:
    found = find_watermark(mediagen.sd_marked(photo))
    assert found is not None
    assert found.scheme == "stable-diffusion-v1"
    assert found.bits == 136
    assert found.bit_error_rate <= 0.05
    assert find_watermark(photo) is None


def test_sdxl_mark_written_the_way_diffusers_does_is_found(photo: np.ndarray) -> None:
    from imwatermark import WatermarkEncoder

    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", [int(b) for b in bin(SDXL_MESSAGE)[2:]])
    marked = encoder.encode(photo.copy(), "dwtDct")  # diffusers passes RGB where BGR is expected
    found = find_watermark(np.ascontiguousarray(marked))
    assert found is not None
    assert found.scheme == "sdxl"


def test_small_and_random_images_carry_no_mark() -> None:
    assert find_watermark(np.zeros((100, 100, 3), np.uint8)) is None  # below the package's minimum size
    for seed in range(3):
        noise = np.random.default_rng(seed).integers(0, 256, (300, 400, 3), dtype=np.uint8)
        assert find_watermark(noise) is None


@pytest.mark.parametrize("size", [(256, 256), (301, 419), (375, 500)])
@pytest.mark.parametrize("length", [136, 48, 7])
def test_the_bits_are_the_packages_own(photo: np.ndarray, size: tuple[int, int], length: int) -> None:
    """The vectorised reading gives the bits of ``EmbedMaxDct.decode`` (a Python loop over blocks),
    on a photo, its marked copy and noise, at sizes that are not multiples of the block."""
    import cv2
    from imwatermark.maxDct import EmbedMaxDct

    height, width = size
    image = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(length).integers(0, 256, (height, width, 3), dtype=np.uint8)
    for bgr in (image, mediagen.sd_marked(image), noise):
        bgr = np.ascontiguousarray(bgr)
        package = np.asarray(EmbedMaxDct(watermarks=[], wmLen=length).decode(bgr), dtype=np.uint8)
        np.testing.assert_array_equal(decode_bits(block_bits(bgr), length), package)


def test_a_found_mark_decides_the_verdict_as_a_stated_rule() -> None:
    from detector.provenance.types import InvisibleWatermark, ProvenanceReport
    from detector.scoring.fusion.rules import Fusion, FusionInputs

    prov = ProvenanceReport(
        state="absent",
        state_description="none",
        watermark=InvisibleWatermark(scheme="sdxl", bit_error_rate=0.0, bits=48),
    )
    score = Fusion.load().fuse(FusionInputs(face_logit=-4.0, provenance=prov))
    assert score.verdict == "ai_generated"
    assert score.rule == "invisible_watermark"
    signal = next(s for s in score.signals if s.name == "invisible_watermark")
    assert signal.present
    assert "Stable Diffusion XL" in signal.sentence
    plain = Fusion.load().fuse(
        FusionInputs(face_logit=-4.0, provenance=prov.model_copy(update={"watermark": None}))
    )
    assert plain.rule is None
    assert plain.verdict != "ai_generated"


def test_a_videos_signal_says_videos_are_not_searched() -> None:
    """Only still images are searched (stages.watermark_of): a video's report must not say that no
    mark was decoded, as if its frames had been looked at."""
    from detector.provenance.types import ProvenanceReport
    from detector.scoring.fusion.rules import Fusion, FusionInputs

    prov = ProvenanceReport(state="absent", state_description="none")
    fusion = Fusion.load()
    for kind, words in (("video", "Videos are not searched"), ("image", "No known invisible watermark")):
        score = fusion.fuse(FusionInputs(face_logit=-1.0, provenance=prov, media_kind=kind))
        signal = next(s for s in score.signals if s.name == "invisible_watermark")
        assert not signal.present
        assert signal.sentence.startswith(words), (kind, signal.sentence)


def test_metadata_beside_a_deciding_watermark_claims_no_log_odds() -> None:
    """The watermark rule decides with no fused log-odds (``score.logit`` null): an A1111 parameters
    chunk beside it must not say it "adds 1.50 log-odds" to a score that is not computed."""
    from detector.provenance.types import InvisibleWatermark, ProvenanceReport
    from detector.scoring.fusion.rules import Fusion, FusionInputs

    hint = sd_parameters()
    mark = InvisibleWatermark(scheme="stable-diffusion-v1", bit_error_rate=0.04, bits=136)
    prov = ProvenanceReport(state="absent", state_description="none", metadata_hints=[hint], watermark=mark)
    score = Fusion.load().fuse(FusionInputs(synthetic_logit=-3.0, provenance=prov, media_kind="image"))
    assert score.rule == "invisible_watermark"
    assert score.logit is None
    signal = next(s for s in score.signals if s.name == "metadata")
    assert signal.contribution is None
    assert "not counted, since a stated rule decided the verdict" in signal.sentence
