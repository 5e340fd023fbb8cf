"""Face extraction: crop geometry, track linking, MTCNN detection on generated and real media."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from detector.faces.extract import FaceDetection, FaceExtractor, box_iou, crop_face, link_tracks
from detector.settings import FaceSettings
from detector.stages import find_faces
from tests.support import mediagen


@dataclass(frozen=True)
class Frame:
    """Stand-in for detector.media.frames.Frame: only what face extraction reads."""

    index: int
    image: np.ndarray


def det(frame_index: int, x1: float, y1: float, x2: float, y2: float) -> FaceDetection:
    return FaceDetection(frame_index, (x1, y1, x2, y2), 0.99, np.zeros((5, 2), np.float32))


def coordinate_image(height: int, width: int) -> np.ndarray:
    """Every pixel distinct and non-zero: R = row, G = column, B = 255 (so padding reads as 0)."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows, cols, np.full_like(rows, 255)], axis=-1).astype(np.uint8)


# ---------------------------------------------------------------- crop geometry


# box, margin, size, expected (top, left) of the square in image coordinates and its side
CROP_CASES = [
    pytest.param((40, 40, 60, 60), 1.0, 20, (40, 40), 20, id="no-margin"),
    pytest.param((40, 40, 60, 60), 2.0, 40, (30, 30), 40, id="margin-2"),
    pytest.param((40, 30, 60, 70), 1.5, 60, (20, 20), 60, id="tall-box-uses-max-side"),
    pytest.param((30, 45, 70, 55), 1.0, 40, (30, 30), 40, id="wide-box-uses-max-side"),
    pytest.param((0, 0, 20, 20), 2.0, 40, (-10, -10), 40, id="top-left-corner-padded"),
    pytest.param((80, 90, 100, 100), 1.3, 26, (82, 77), 26, id="bottom-right-padded"),
    pytest.param((-30, 40, -10, 60), 1.0, 20, (40, -30), 20, id="outside-all-padding"),
]


@pytest.mark.parametrize(("box", "margin", "size", "top_left", "side"), CROP_CASES)
def test_crop_face_takes_centred_square_with_zero_padding(
    box: tuple[float, float, float, float], margin: float, size: int, top_left: tuple[int, int], side: int
) -> None:
    image = coordinate_image(100, 100)
    crop = crop_face(image, box, margin, size)
    assert crop.shape == (size, size, 3)
    assert crop.dtype == np.uint8
    top, left = top_left
    for r in range(side):
        for c in range(side):
            y, x = top + r, left + c
            inside = 0 <= y < 100 and 0 <= x < 100
            expected = image[y, x] if inside else np.zeros(3, np.uint8)
            np.testing.assert_array_equal(crop[r, c], expected, err_msg=f"pixel {(r, c)}")


@pytest.mark.parametrize(
    ("box", "margin", "size"),
    [
        ((100, 60, 140, 100), 1.3, 64),
        ((100, 50, 140, 110), 1.3, 224),
        ((10, 10, 30, 30), 2.0, 32),
        ((150, 100, 200, 150), 1.0, 299),
    ],
)
def test_crop_face_centres_the_box_content_at_any_output_size(
    box: tuple[float, float, float, float], margin: float, size: int
) -> None:
    image = np.zeros((160, 200, 3), np.uint8)
    x1, y1, x2, y2 = (int(v) for v in box)
    image[y1:y2, x1:x2] = 255
    crop = crop_face(image, box, margin, size)
    assert crop.shape == (size, size, 3)
    ys, xs = np.nonzero(crop[..., 0] > 127)
    assert abs(ys.mean() - (size - 1) / 2) < 0.02 * size
    assert abs(xs.mean() - (size - 1) / 2) < 0.02 * size
    # the box occupies 1/margin of the crop along its longer side
    longer = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    assert longer == pytest.approx(size / margin, rel=0.06)


def test_crop_face_rejects_bad_arguments() -> None:
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="margin"):
        crop_face(image, (0, 0, 5, 5), 0.0, 10)
    with pytest.raises(ValueError, match="size"):
        crop_face(image, (0, 0, 5, 5), 1.3, 0)


# ---------------------------------------------------------------- tracks


def test_side_is_the_longer_box_side() -> None:
    assert det(0, 10, 20, 30, 60).side == 40
    assert det(0, 10, 20, 60, 30).side == 50


def test_two_crossing_faces_give_two_tracks() -> None:
    # face A walks right on the upper half, face B walks left lower down; they overlap mid-clip
    per_frame = []
    for i in range(9):
        a = det(i * 10, 10 + 20 * i, 50, 90 + 20 * i, 130)
        b = det(i * 10, 170 - 20 * i, 80, 250 - 20 * i, 160)
        per_frame.append([b, a] if i % 2 else [a, b])
    tracks = link_tracks(per_frame, iou_threshold=0.3, center_dist=0.5)
    assert len(tracks) == 2
    for track in tracks:
        assert track.frame_indices == [i * 10 for i in range(9)]
        ys = {d.box[1] for d in track.detections}
        assert len(ys) == 1, "a track switched identity"
    assert {t.track_id for t in tracks} == {0, 1}


def test_missed_detection_keeps_the_track() -> None:
    per_frame: list[list[FaceDetection]] = [[det(i, 100 + 3 * i, 100, 180 + 3 * i, 180)] for i in range(6)]
    per_frame[3] = []
    tracks = link_tracks(per_frame, iou_threshold=0.3, center_dist=0.5)
    assert len(tracks) == 1
    assert tracks[0].frame_indices == [0, 1, 2, 4, 5]
    assert tracks[0].detections[1] is per_frame[1][0]


def test_a_long_gap_starts_a_new_track() -> None:
    per_frame: list[list[FaceDetection]] = [[det(i, 100, 100, 180, 180)] for i in range(8)]
    per_frame[2:6] = [[], [], [], []]
    tracks = link_tracks(per_frame, iou_threshold=0.3, center_dist=0.5, max_gap=2)
    assert [t.frame_indices for t in tracks] == [[0, 1], [6, 7]]


def test_fast_motion_links_by_centre_distance_when_iou_fails() -> None:
    # boxes of side 80 moving 36 px per frame: IoU 0.38 -> below 0.5, centre distance 0.45 side
    per_frame = [[det(i, 36 * i, 0, 36 * i + 80, 80)] for i in range(5)]
    assert len(link_tracks(per_frame, iou_threshold=0.5, center_dist=0.5)) == 1
    assert len(link_tracks(per_frame, iou_threshold=0.5, center_dist=0.3)) == 5


def test_tracks_are_sorted_longest_then_largest() -> None:
    small = [det(i, 0, 0, 40, 40) for i in range(3)]
    large = [det(i, 300, 300, 400, 400) for i in range(3)]
    short = [det(0, 600, 0, 700, 100)]
    per_frame = [[small[0], large[0], short[0]], [small[1], large[1]], [small[2], large[2]]]
    tracks = link_tracks(per_frame, iou_threshold=0.3, center_dist=0.5)
    assert [t.mean_side for t in tracks] == [100, 40, 100]
    assert [t.length for t in tracks] == [3, 3, 1]
    assert [t.track_id for t in tracks] == [0, 1, 2]


# ---------------------------------------------------------------- MTCNN


# generated frames: at 480x360 the face is about 60 px, clear of the default min_face_px (32)
CLIP_SIZE = (480, 360)


@pytest.fixture(scope="module")
def extractor() -> FaceExtractor:
    return FaceExtractor(FaceSettings(), "cpu")


def test_detects_the_face_with_landmarks_inside_it(extractor: FaceExtractor, face_photo: np.ndarray) -> None:
    (found,) = extractor.detect([face_photo])
    assert len(found) == 1
    face = found[0]
    x1, y1, x2, y2 = face.box
    assert face.frame_index == 0
    assert face.probability >= 0.9
    assert 0 <= x1 < x2 <= 512
    assert 0 <= y1 < y2 <= 512
    assert 100 < face.side < 250  # the astronaut's face is about a third of the photo
    assert face.landmarks.shape == (5, 2)
    assert face.landmarks.dtype == np.float32
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < right_eye[0]
    assert mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert np.all((face.landmarks >= [x1, y1]) & (face.landmarks <= [x2, y2]))


def test_downscaled_detection_maps_back_to_full_resolution(face_photo: np.ndarray) -> None:
    small_extractor = FaceExtractor(FaceSettings(detect_longest_side=512))
    large = np.asarray(Image.fromarray(face_photo).resize((1536, 1536), Image.Resampling.BICUBIC))
    small_found, large_found = small_extractor.detect([face_photo, large])
    assert len(small_found) == 1
    assert len(large_found) == 1
    small, big = small_found[0], large_found[0]
    tolerance = 0.04 * small.side
    np.testing.assert_allclose(np.array(big.box) / 3, small.box, atol=tolerance)
    np.testing.assert_allclose(big.landmarks / 3, small.landmarks, atol=tolerance)
    assert big.frame_index == 1


def test_frames_without_faces_and_tiny_frames_stay_aligned(
    extractor: FaceExtractor, face_photo: np.ndarray
) -> None:
    grey = np.full((240, 320, 3), 128, np.uint8)
    tiny = np.zeros((10, 10, 3), np.uint8)
    found = extractor.detect([grey, face_photo, tiny, face_photo[::2, ::2]])
    assert [len(f) for f in found] == [0, 1, 0, 1]
    assert found[1][0].frame_index == 1
    assert found[3][0].frame_index == 3
    assert extractor.detect([]) == []


def test_batching_gives_the_same_faces_as_one_at_a_time() -> None:
    frames = [mediagen.face_frame(i, 5, CLIP_SIZE) for i in range(5)]
    batched = FaceExtractor(FaceSettings(batch_size=2)).detect(frames)
    single = [FaceExtractor(FaceSettings(batch_size=1)).detect([f])[0] for f in frames]
    for b, s in zip(batched, single, strict=True):
        assert len(b) == len(s) == 1
        np.testing.assert_allclose(b[0].box, s[0].box, atol=0.5)


def test_thresholds_drop_small_and_unlikely_faces(face_photo: np.ndarray) -> None:
    assert FaceExtractor(FaceSettings(min_face_px=300)).detect([face_photo]) == [[]]
    (found,) = FaceExtractor(FaceSettings(min_face_px=100, min_probability=0.5)).detect([face_photo])
    assert len(found) == 1


def test_the_stages_never_search_for_faces_the_face_model_cannot_judge(face_photo: np.ndarray) -> None:
    import cv2

    from detector.settings import Settings
    from detector.stages import SEARCH_MARGIN, face_extractor, face_spec, judged_face_side, smallest_face

    settings = Settings()
    side = smallest_face(settings.faces, face_spec(settings))
    judged = judged_face_side(face_spec(settings))  # 128 px input, margin 1.6: 40 px
    assert side == math.floor(judged * SEARCH_MARGIN) == 32
    extractor = face_extractor(settings, "cpu")
    assert extractor.min_face_px == side

    def framed(scale: float) -> np.ndarray:  # the astronaut's face (about 111 px), scaled
        small = cv2.resize(face_photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame = np.full((360, 480, 3), 128, np.uint8)
        frame[100 : 100 + small.shape[0], 150 : 150 + small.shape[1]] = small
        return frame

    tiny, judged_size = framed(0.23), framed(0.34)  # faces of about 26 and 38 px
    (loose,) = FaceExtractor(FaceSettings(min_face_px=20)).detect([tiny])
    assert len(loose) == 1
    assert loose[0].side < side
    assert extractor.detect([tiny]) == [[]]  # below the search size: not looked for
    (found,) = extractor.detect([judged_size])
    assert len(found) == 1
    assert side <= found[0].side < judged + 1
    explicit = face_extractor(Settings(faces=FaceSettings(min_face_px=20)), "cpu")
    assert explicit.min_face_px == 20
    assert len(explicit.detect([tiny])[0]) == 1


def test_a_borderline_face_is_kept_or_dropped_by_min_probability() -> None:
    """The generated borderline face (see tests/e2e: Serve must answer like in-process on it)."""
    image = mediagen.borderline_face()
    (loose,) = FaceExtractor(FaceSettings(min_probability=0.5)).detect([image])
    assert len(loose) == 1
    assert 0.9 < loose[0].probability < 0.95, loose[0].probability
    (kept,) = FaceExtractor(FaceSettings(min_probability=0.9)).detect([image])
    assert [(d.box, d.probability) for d in kept] == [(loose[0].box, loose[0].probability)]
    assert FaceExtractor(FaceSettings()).detect([image]) == [[]], "dropped at the default 0.95"


def test_rejects_images_that_are_not_rgb_uint8(extractor: FaceExtractor) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        extractor.detect([np.zeros((64, 64), np.uint8)])
    with pytest.raises(ValueError, match="RGB uint8"):
        extractor.detect([np.zeros((64, 64, 3), np.float32)])


def test_generated_clip_yields_one_track(extractor: FaceExtractor) -> None:
    n = 20
    frames = [Frame(index=7 * i, image=mediagen.face_frame(i, n, CLIP_SIZE)) for i in range(n)]
    result = find_faces(extractor.detect, frames, extractor.settings, extractor.min_face_px)
    assert len(result.per_frame) == n
    assert result.tracks, "no face track found"
    main = result.tracks[0]
    assert main.track_id == 0
    assert main.length >= 0.9 * n
    assert main.frame_indices == sorted(main.frame_indices)
    assert set(main.frame_indices) <= {f.index for f in frames}
    xs = [d.box[0] for d in main.detections]
    assert xs == sorted(xs), "the face moves left to right"
    found = {id(d) for dets in result.per_frame for d in dets}
    assert all(id(d) in found for d in main.detections), "tracks hold the per-frame detections"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_finds_the_same_face_as_cpu(extractor: FaceExtractor, face_photo: np.ndarray) -> None:
    (cpu,) = extractor.detect([face_photo])
    (cuda,) = FaceExtractor(FaceSettings(), "cuda").detect([face_photo])
    assert len(cuda) == len(cpu) == 1
    np.testing.assert_allclose(cuda[0].box, cpu[0].box, atol=1.0)


# ---------------------------------------------------------------- real media


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


@pytest.mark.shared_data
@pytest.mark.slow
def test_finds_faces_in_the_verified_photos(shared_data: Path, extractor: FaceExtractor) -> None:
    root = shared_data / "faces"
    with (root / "VERIFY.tsv").open(newline="") as handle:
        paths = [r["path"] for r in csv.DictReader(handle, delimiter="\t") if int(r["haar_faces"]) >= 1]
    assert len(paths) > 100
    missed = [p for p in paths if not extractor.detect([_read_rgb(root / p)])[0]]
    rate = 1 - len(missed) / len(paths)
    assert rate >= 0.95, f"faces found in {rate:.1%} of {len(paths)} photos; missed {missed}"


def sample_frames(path: Path, n: int) -> list[Frame]:
    """``n`` frames at evenly spaced times: seek to each time (unless it is close ahead), decode on."""
    frames: list[Frame] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None
        assert stream.average_rate is not None
        duration = float(stream.duration * stream.time_base)
        decoded = None
        last_time = -1.0
        for k in range(n):
            target = duration * (k + 0.5) / n
            if decoded is None or not (last_time <= target < last_time + 2.0):
                container.seek(int(target / stream.time_base), stream=stream, backward=True)
                decoded = container.decode(stream)
            for frame in decoded:
                last_time = float(frame.time)
                if last_time + 1e-6 >= target:
                    index = round(last_time * float(stream.average_rate))
                    frames.append(Frame(index=index, image=frame.to_ndarray(format="rgb24")))
                    break
    return frames


@pytest.mark.shared_data
@pytest.mark.parametrize("clip", ["original/519.mp4", "Deepfakes/519_515.mp4"])
def test_ffpp_clip_faces_form_one_main_track(shared_data: Path, extractor: FaceExtractor, clip: str) -> None:
    frames = sample_frames(shared_data / "deepfake" / "ffpp_c23" / clip, 32)
    assert len(frames) == 32
    result = find_faces(extractor.detect, frames, extractor.settings, extractor.min_face_px)
    with_face = sum(1 for dets in result.per_frame if dets)
    assert with_face >= 0.9 * 32, f"faces in {with_face}/32 frames"
    main = result.tracks[0]
    assert main.length >= 0.9 * 32, f"main track covers {main.length}/32 frames"
    assert all(t.length < main.length / 4 for t in result.tracks[1:]), "the face split into tracks"


@pytest.mark.shared_data
@pytest.mark.parametrize("clip", ["original/519.mp4", "Deepfakes/519_515.mp4"])
def test_the_detection_plan_finds_the_faces_of_whole_frame_search(
    shared_data: Path, extractor: FaceExtractor, clip: str
) -> None:
    """Anchors every 4th frame and regions between them: the same faces, a quarter of the searches."""
    from detector.faces.plan import DetectionPlan

    images = [f.image for f in sample_frames(shared_data / "deepfake" / "ffpp_c23" / clip, 32)]
    everywhere = extractor.detect(images)
    plan = DetectionPlan(images, FaceSettings(full_detect_every=4), extractor.min_face_px)
    planned = plan.run(extractor.detect)
    assert plan.whole_searches <= 12, plan.whole_searches
    assert plan.region_searches >= 20, plan.region_searches
    for i, (whole, followed) in enumerate(zip(everywhere, planned, strict=True)):
        assert len(followed) >= len(whole), f"frame {i}: {len(followed)} faces, whole search {len(whole)}"
        for face in whole:
            best = max(box_iou(face.box, other.box) for other in followed)
            assert best >= 0.8, f"frame {i}: IoU {best:.2f}"
            assert all(d.frame_index == i for d in followed)


@pytest.mark.shared_data
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_finds_as_many_faces_as_cpu_in_the_verified_photos(shared_data: Path) -> None:
    """On an H200 with TF32 convolutions MTCNN found 26 faces where the CPU found 28."""
    root = shared_data / "faces"
    with (root / "VERIFY.tsv").open(newline="") as handle:
        paths = [r["path"] for r in csv.DictReader(handle, delimiter="\t") if int(r["haar_faces"]) >= 1]
    photos = [_read_rgb(root / p) for p in paths[:40]]
    cpu, cuda = FaceExtractor(FaceSettings(), "cpu"), FaceExtractor(FaceSettings(), "cuda")
    assert [len(cuda.detect([p])[0]) for p in photos] == [len(cpu.detect([p])[0]) for p in photos]
