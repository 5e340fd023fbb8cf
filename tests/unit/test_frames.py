"""Compact frames (:mod:`detector.media.frames`): a video frame keeps its I420 planes, half the bytes
of RGB, and reads back as exactly the RGB a straight decode gives; stages read frames one by one."""

from __future__ import annotations

import copyreg
import pickle
from fractions import Fraction
from pathlib import Path
from typing import Any, SupportsIndex

import av
import numpy as np
import pytest

from detector.faces.extract import FaceExtractor
from detector.faces.plan import DetectionPlan
from detector.media.frames import Frame, Images, Packing, pack
from detector.media.loader import MediaLoader
from detector.media.sampling import FrameSampler, sampled_frame
from detector.settings import FaceSettings
from tests.support import mediagen

# FFmpeg's enum values: colour spaces BT.709 = 1, unspecified = 2, BT.601 (SMPTE 170M) = 6;
# ranges MPEG (limited) = 1, JPEG (full) = 2
TAGS = [(2, 0), (1, 1), (6, 1), (1, 2)]


SIZES = [(48, 64), (480, 854), (30, 50), (2, 2)]  # 854 and 50: RGB rows not a multiple of 32 bytes


def yuv_frame(
    height: int, width: int, colorspace: int, color_range: int, seed: int = 0, fmt: str = "yuv420p"
) -> av.VideoFrame:
    """A 4:2:0 frame with random planes (every chroma value, not only a photo's) and colour tags."""
    planes = np.random.default_rng(seed).integers(0, 256, (height * 3 // 2, width), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(planes, format=fmt)
    frame.colorspace, frame.color_range = colorspace, color_range
    frame.pts, frame.time_base = seed, Fraction(1, 25)
    return frame


@pytest.mark.parametrize("fmt", ["yuv420p", "yuvj420p"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("colorspace", "color_range"), TAGS)
def test_unpacked_rgb_is_the_decoders_rgb(
    colorspace: int, color_range: int, size: tuple[int, int], fmt: str
) -> None:
    height, width = size
    frame = yuv_frame(height, width, colorspace, color_range, fmt=fmt)
    packed = pack(frame, 0)
    assert packed is not None
    planes, packing = packed
    assert planes.nbytes == height * width * 3 // 2  # half of RGB's
    image = packing.rgb(planes)
    assert np.array_equal(image, frame.to_ndarray(format="rgb24"))
    assert image.flags.c_contiguous


def test_unpacking_needs_the_frames_own_colour_tags() -> None:
    """Without the tags the converter assumes BT.601 limited range: BT.709 pixels would change."""
    frame = yuv_frame(48, 64, 1, 1)
    planes, packing = pack(frame, 0) or pytest.fail("not packed")
    untagged = Packing(2, 0, "yuv420p").rgb(planes)
    assert not np.array_equal(untagged, packing.rgb(planes))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("turns", [1, 2, 3])
def test_turned_frames_are_packed_upright(turns: int, size: tuple[int, int]) -> None:
    """Turning the three planes once at packing gives the pixels of turning the decoded RGB."""
    height, width = size
    frame = yuv_frame(height, width, 1, 1)
    planes, packing = pack(frame, turns) or pytest.fail("not packed")
    image = packing.rgb(planes)
    assert np.array_equal(image, np.rot90(frame.to_ndarray(format="rgb24"), k=-turns))
    assert image.flags.c_contiguous
    assert packing.size(planes) == image.shape[:2] == ((width, height) if turns % 2 else size)


@pytest.mark.parametrize(
    ("height", "width", "pix_fmt"),
    [
        (47, 64, "yuv420p"),
        (48, 63, "yuv420p"),
        (48, 64, "yuv444p"),
        (48, 64, "yuv422p"),
        (48, 64, "yuv420p10le"),
    ],
)
def test_other_layouts_stay_rgb(height: int, width: int, pix_fmt: str) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
    frame.pts, frame.time_base = 0, Fraction(1, 25)
    assert pack(frame, 0) is None
    got = sampled_frame(0, frame, 4096)
    assert got.packing is None
    assert np.array_equal(got.image, frame.to_ndarray(format="rgb24"))
    assert got.size == (height, width)


def test_frames_over_the_size_limit_are_scaled_to_rgb() -> None:
    frame = yuv_frame(48, 64, 2, 0)
    got = sampled_frame(3, frame, 32)
    assert got.packing is None
    assert got.image.shape == (24, 32, 3)
    assert got.scale == 0.5
    kept = sampled_frame(3, frame, 64)
    assert kept.packing is not None
    assert kept.scale == 1.0
    assert kept.index == 3


def test_a_sampled_clip_holds_half_the_bytes_of_rgb(tmp_path: Path) -> None:
    frames = [mediagen.face_frame(i, 12, (96, 64)) for i in range(12)]
    path = mediagen.write_video(tmp_path / "clip.mp4", frames)
    sample = FrameSampler().sample(MediaLoader().load(path), 6)
    assert len(sample.frames) == 6
    assert all(f.packing is not None for f in sample.frames)
    assert sum(f.pixels.nbytes for f in sample.frames) == 6 * 64 * 96 * 3 // 2
    for f in sample.frames:
        assert f.size == f.image.shape[:2] == (64, 96)


class OldFrame:
    """Pickles as the previous code's ``detector.media.sampling.Frame`` did: its RGB under ``image``."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        state = {"index": 2, "timestamp": 0.5, "image": self.image, "scale": 0.5}
        return copyreg._reconstructor, (Frame, object, None), state  # type: ignore[attr-defined]


def test_frames_pickled_by_the_previous_code_still_load() -> None:
    """The evaluation cache holds stage outputs pickled before frames were packed."""
    image = np.full((4, 6, 3), 7, np.uint8)
    written = pickle.dumps(OldFrame(image), protocol=0)
    assert b"detector.media.frames\nFrame" in written
    old = written.replace(b"detector.media.frames\nFrame", b"detector.media.sampling\nFrame")
    restored = pickle.loads(old)
    assert isinstance(restored, Frame)
    assert (restored.index, restored.timestamp, restored.scale, restored.packing) == (2, 0.5, 0.5, None)
    assert np.array_equal(restored.image, image)
    assert restored.size == (4, 6)


def test_a_packed_frame_survives_pickling() -> None:
    frame = yuv_frame(30, 50, 1, 1)
    planes, packing = pack(frame, 1) or pytest.fail("not packed")
    packed = Frame(3, 0.12, planes, 1.0, packing)
    again = pickle.loads(pickle.dumps(packed, protocol=pickle.HIGHEST_PROTOCOL))
    assert again.packing == packing
    assert np.array_equal(again.image, packed.image)


def test_pixels_must_match_their_layout() -> None:
    planes, packing = pack(yuv_frame(48, 64, 2, 0), 0) or pytest.fail("not packed")
    with pytest.raises(ValueError, match="I420"):
        Frame(0, 0.0, np.zeros((48, 64, 3), np.uint8), 1.0, packing)  # RGB marked as packed
    with pytest.raises(ValueError, match="I420"):
        Frame(0, 0.0, planes[:-1], 1.0, packing)
    with pytest.raises(ValueError, match="RGB"):
        Frame(0, 0.0, planes)  # planes not marked as packed
    with pytest.raises(ValueError, match="RGB"):
        Frame(0, 0.0, np.zeros((4, 4, 3), np.float32))


class Counting:
    """A frame stand-in that counts how often its image is read."""

    def __init__(self, image: np.ndarray) -> None:
        self._image = image
        self.reads = 0

    @property
    def index(self) -> int:
        return 0

    @property
    def image(self) -> np.ndarray:
        self.reads += 1
        return self._image


def test_images_unpack_only_what_is_read() -> None:
    frames = [Counting(np.zeros((8 + i, 10, 3), np.uint8)) for i in range(4)]
    images = Images(frames)
    assert len(images) == 4
    assert sum(f.reads for f in frames) == 0
    part = images[1:3]
    assert isinstance(part, Images)
    assert len(part) == 2
    assert sum(f.reads for f in frames) == 0
    assert part[0].shape == (9, 10, 3)
    assert frames[1].reads == 1
    assert [images.size(i) for i in range(4)] == [(8, 10), (9, 10), (10, 10), (11, 10)]
    assert [im.shape[0] for im in images] == [8, 9, 10, 11]
    assert [f.reads for f in frames] == [2, 3, 2, 2]  # the size of a stand-in (not a Frame) reads it


def test_a_planned_detection_reads_each_whole_frame_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan's requests stay packed until the detector reads them, and the detector reads each
    once (its sizes come from the frames, not from unpacking them)."""
    frame = yuv_frame(48, 64, 2, 0)
    planes, packing = pack(frame, 0) or pytest.fail("not packed")
    reads = {"n": 0}
    real = Packing.rgb

    def counted(self: Packing, p: np.ndarray) -> np.ndarray:
        reads["n"] += 1
        return real(self, p)

    monkeypatch.setattr(Packing, "rgb", counted)
    frames = [Frame(i, i / 25, planes, 1.0, packing) for i in range(3)]
    plan = DetectionPlan(Images(frames), FaceSettings(full_detect_every=1), 8.0)
    requests = plan.requests()
    assert len(requests) == 3
    assert reads["n"] == 0
    extractor = FaceExtractor(FaceSettings())
    none = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
    monkeypatch.setattr(extractor, "_run", lambda batch, _size: [none] * len(batch))
    assert extractor.detect(requests) == [[], [], []]
    assert reads["n"] == 3


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32)])
def test_a_malformed_array_is_refused_before_any_search(bad: np.ndarray) -> None:
    """Even one too small to search (which is skipped, not read, once its size is known)."""
    with pytest.raises(ValueError, match="RGB uint8"):
        FaceExtractor(FaceSettings()).detect([bad])


class IndexedCounting(Counting):
    """A counting stand-in with its own frame index."""

    def __init__(self, index: int, image: np.ndarray) -> None:
        super().__init__(image)
        self._index = index

    @property
    def index(self) -> int:
        return self._index


def test_face_crops_read_each_frame_with_faces_once() -> None:
    from detector.faces.extract import FaceResult, crop_face
    from detector.faces.tracks import FaceDetection
    from detector.models.spec import InputSpec
    from detector.stages import crop_faces

    rng = np.random.default_rng(3)
    frames = [IndexedCounting(i, rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)) for i in range(3)]
    marks = np.zeros((5, 2), np.float32)
    boxes = [(10.0, 12.0, 30.0, 36.0), (40.0, 8.0, 70.0, 40.0)]
    per_frame = [
        [FaceDetection(0, b, 0.99, marks) for b in boxes],
        [],
        [FaceDetection(2, boxes[1], 0.9, marks)],
    ]
    spec = InputSpec(size=(32, 32), crop_margin=1.3)
    keys, crops = crop_faces(frames, FaceResult(per_frame, []), spec, 1.0)  # type: ignore[arg-type]
    assert keys == [(0, 0), (0, 1), (2, 0)]
    assert [f.reads for f in frames] == [1, 0, 1]
    expected = [
        crop_face(frames[i]._image, box, 1.3, 32) for i, box in ((0, boxes[0]), (0, boxes[1]), (2, boxes[1]))
    ]
    assert all(np.array_equal(a, b) for a, b in zip(crops, expected, strict=True))
