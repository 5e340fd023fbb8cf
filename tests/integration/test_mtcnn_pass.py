"""Our MTCNN pass (mtcnn_pass.py, mtcnn_nets.py, nms.py) against facenet-pytorch's ``detect``."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from detector.faces import mtcnn_pass
from detector.faces.extract import FaceExtractor
from detector.faces.mtcnn_nets import Mtcnn
from detector.faces.mtcnn_pass import (
    Faces,
    area_crops,
    area_resize,
    column_sums,
    detect_batch,
    max_pool_2x2,
    pnet_forward,
    pooled_prelu,
)
from detector.settings import FaceSettings
from tests.support import mediagen

if TYPE_CHECKING:
    from facenet_pytorch import MTCNN


@pytest.fixture(scope="module")
def facenet_mtcnn() -> MTCNN:
    """facenet-pytorch's own detector (the reference; the service never imports it)."""
    from detector.faces.tvcompat import ensure_torchvision

    ensure_torchvision()
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, select_largest=False, device="cpu").eval()


@pytest.fixture(scope="module")
def mtcnn() -> Mtcnn:
    """The networks the service detects with (:mod:`detector.faces.mtcnn_nets`)."""
    return FaceExtractor(FaceSettings(), "cpu")._network()


def facenet(mtcnn: MTCNN, batch: np.ndarray, min_size: float) -> list[Faces]:
    """facenet-pytorch's own detect on the batch, as float32 arrays per image."""
    mtcnn.min_face_size = min_size
    boxes, probs, points = mtcnn.detect(batch, landmarks=True)
    out = []
    for b, p, pts in zip(boxes, probs, points, strict=True):
        if b is None:
            out.append(
                (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
            )
        else:
            b, p, pts = (np.asarray(np.asarray(v).tolist(), np.float32) for v in (b, p, pts))
            out.append((b, p, pts))
    return out


def assert_same_faces(ours: list[Faces], theirs: list[Faces]) -> None:
    """Same faces per image: boxes and landmarks within 1 px, probabilities within 1e-3."""
    assert len(ours) == len(theirs)
    for i, ((ob, op, ol), (tb, tp, tl)) in enumerate(zip(ours, theirs, strict=True)):
        assert len(ob) == len(tb), f"image {i}: {len(ob)} faces, facenet {len(tb)}"
        order_o, order_t = np.lexsort(ob.T[::-1]), np.lexsort(tb.T[::-1])
        np.testing.assert_allclose(ob[order_o], tb[order_t], atol=1.0, err_msg=f"image {i} boxes")
        np.testing.assert_allclose(op[order_o], tp[order_t], atol=1e-3, err_msg=f"image {i} probabilities")
        np.testing.assert_allclose(ol[order_o], tl[order_t], atol=1.0, err_msg=f"image {i} landmarks")


def test_area_crops_equal_area_interpolation_of_each_crop() -> None:
    rng = np.random.default_rng(0)
    images = torch.as_tensor(rng.integers(0, 256, (2, 37, 53, 3), dtype=np.uint8))
    rects = torch.tensor(
        [[0, 37, 0, 53], [3, 10, 5, 40], [10, 11, 20, 21], [2, 30, 40, 53], [0, 5, 0, 90 // 2]]
    )
    index = torch.tensor([0, 1, 0, 1, 1])
    for size in (24, 48):
        crops = area_crops(column_sums(images).cumsum_(2), index, rects, size)
        for k, (y0, y1, x0, x1) in enumerate(rects.tolist()):
            crop = images[index[k], y0:y1, x0:x1].permute(2, 0, 1)[None].float()
            expected = torch.nn.functional.interpolate(crop, size=(size, size), mode="area")[0]
            torch.testing.assert_close(crops[k], expected, rtol=1e-6, atol=1e-4)


def test_pyramid_levels_equal_area_pooling_of_the_float_batch_bit_for_bit() -> None:
    """P-Net sees the same floats as facenet's ``interpolate(mode="area")`` of the float batch,
    shrinking, enlarging by a pixel (``min_size`` 12 gives ``H + 1``) and at odd ratios, down to
    the 12 px short side where the pyramid ends (a 1x1 output is a global mean, rounded otherwise)."""
    rng = np.random.default_rng(1)
    images = torch.as_tensor(rng.integers(0, 256, (3, 61, 97, 3), dtype=np.uint8))
    columns = column_sums(images)
    floats = images.permute(0, 3, 1, 2).float()
    for size in [(62, 98), (61, 97), (43, 69), (30, 49), (13, 20), (12, 12), (12, 40)]:  # short side >= 12
        level = area_resize(columns, size)
        expected = torch.nn.functional.interpolate(floats, size=size, mode="area")
        assert level.shape == expected.shape
        assert torch.equal(level, expected), size
    table = columns.cumsum_(2)  # completed along the rows: the summed-area table
    assert torch.equal(table[:, 0], torch.zeros_like(table[:, 0]))
    assert torch.equal(table[:, :, 0], torch.zeros_like(table[:, :, 0]))
    for y, x in [(1, 1), (17, 40), (61, 97)]:
        assert torch.equal(table[:, y, x], images[:, :y, :x].sum(dim=(1, 2), dtype=torch.int32))


def test_the_photo_and_clip_frames_give_facenets_faces(
    mtcnn: Mtcnn, facenet_mtcnn: MTCNN, face_photo: np.ndarray
) -> None:
    photo = face_photo[None]
    assert_same_faces(detect_batch(mtcnn, photo, 20.0, full_frame=False), facenet(facenet_mtcnn, photo, 20.0))
    frames = np.stack([mediagen.face_frame(i, 8, (480, 360)) for i in range(8)])
    for min_size in (12.0, 30.0):
        ours = detect_batch(mtcnn, frames, min_size, pnet_pixels=200_000, full_frame=False)  # chunked P-Net
        assert_same_faces(ours, facenet(facenet_mtcnn, frames, min_size))
        assert all(len(f[0]) >= 1 for f in ours)


def test_an_image_without_faces_and_one_too_small_give_none(mtcnn: Mtcnn) -> None:
    grey = np.full((2, 120, 160, 3), 128, np.uint8)
    assert [len(f[0]) for f in detect_batch(mtcnn, grey, 20.0)] == [0, 0]
    assert [len(f[0]) for f in detect_batch(mtcnn, grey[:, :10, :10], 20.0)] == [0, 0]
    with pytest.raises(ValueError, match="uint8"):
        detect_batch(mtcnn, grey.astype(np.float32), 20.0)


def test_pixel_bound_batches_give_the_same_faces() -> None:
    frames = [mediagen.face_frame(i, 6, (480, 360)) for i in range(6)]
    one_at_a_time = FaceExtractor(FaceSettings(max_batch_pixels=1)).detect(frames)
    together = FaceExtractor(FaceSettings()).detect(frames)
    for a, b in zip(one_at_a_time, together, strict=True):
        assert len(a) == len(b) == 1
        np.testing.assert_allclose(a[0].box, b[0].box, atol=0.5)


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


@pytest.mark.shared_data
@pytest.mark.slow
def test_verified_photos_give_facenets_faces(shared_data: Path, mtcnn: Mtcnn, facenet_mtcnn: MTCNN) -> None:
    """Every face facenet finds at or above the minimum size in VERIFY.tsv's photos, ours finds too.

    Photos are downscaled like FaceExtractor does (longest side 640); every third photo keeps the
    suite short (the whole list was checked once when the pass was written, and passed).
    """
    root = shared_data / "faces"
    with (root / "VERIFY.tsv").open(newline="") as handle:
        paths = [r["path"] for r in csv.DictReader(handle, delimiter="\t") if int(r["haar_faces"]) >= 1]
    assert len(paths) > 100
    paths = paths[::3]
    min_size, found = 20.0, 0
    for path in paths:
        image = _read_rgb(root / path)
        scale = min(1.0, 640 / max(image.shape[:2]))
        if scale < 1.0:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))
        (ours,) = detect_batch(mtcnn, image[None], min_size, full_frame=False)
        (theirs,) = facenet(facenet_mtcnn, image[None], min_size)
        sides = np.maximum(theirs[0][:, 2] - theirs[0][:, 0], theirs[0][:, 3] - theirs[0][:, 1])
        for box in theirs[0][sides >= min_size]:
            ious = [_iou(box, b) for b in ours[0]]
            assert ious, f"{path}: no face found by ours"
            assert max(ious) >= 0.98, f"{path}: facenet's face {box} not found by ours"
            found += 1
        assert_same_faces([ours], [theirs])
    assert found >= len(paths)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def _filling(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """``photo`` scaled to cover a ``width`` x ``height`` frame and centre-cropped: a close-up."""
    import cv2

    scale = max(width / photo.shape[1], height / photo.shape[0])
    size = (max(width, round(photo.shape[1] * scale)), max(height, round(photo.shape[0] * scale)))
    big = cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR)
    y, x = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    return np.ascontiguousarray(big[y : y + height, x : x + width])


@pytest.mark.shared_data
def test_the_full_frame_level_finds_close_ups_and_keeps_every_other_face(
    shared_data: Path, mtcnn: Mtcnn
) -> None:
    """Faces larger than the frame: facenet's pyramid stops short of two of these close-ups; the
    extra level finds them, and every face facenet finds in the others is still found."""
    root = shared_data / "faces" / "kair_real_faces"
    for name, width, height, missed_by_facenet in [
        ("face_02.png", 640, 360, True),
        ("face_14.png", 360, 640, True),
        ("face_01.png", 640, 360, False),
        ("face_07.png", 360, 640, False),
        ("face_11.png", 480, 360, False),
    ]:
        frame = _filling(_read_rgb(root / name), width, height)[None]
        (ours,) = detect_batch(mtcnn, frame, 19.5)
        (theirs,) = detect_batch(mtcnn, frame, 19.5, full_frame=False)
        assert len(ours[0]) == 1, name
        assert len(theirs[0]) == (0 if missed_by_facenet else 1), name
        for box in theirs[0]:
            assert max(_iou(box, b) for b in ours[0]) >= 0.5, name


def test_the_pyramid_ends_where_the_short_side_is_12_px() -> None:
    from detector.faces.mtcnn_pass import pyramid_scales

    facenets = pyramid_scales(360, 640, 19.5, 0.709, full_frame=False)
    ours = pyramid_scales(360, 640, 19.5, 0.709)
    assert ours[:-1] == facenets
    assert facenets[-1] * 360 > 12.5
    assert ours[-1] * 360 == pytest.approx(12.0)
    assert pyramid_scales(12, 12, 12.0, 0.709) == [1.0]  # already at 12 px: nothing added


def test_the_in_place_pnet_forward_gives_the_modules_numbers(mtcnn: Mtcnn) -> None:
    """Bit for bit: the detection pass runs P-Net through :func:`pnet_forward`, whose in-place
    activations (large inputs; small ones use the module) must not change a single probability or
    regression value."""
    rng = torch.Generator().manual_seed(0)
    # 2nd: conv2 and conv3 rectified in place, 4th: conv3 (conv1 is pooled first, pooled_prelu)
    shapes = ((1, 3, 40, 57), (1, 3, 520, 520), (3, 3, 101, 77), (4, 3, 181, 241))
    layouts = (torch.contiguous_format, torch.channels_last)  # the pass gives P-Net channels-last input
    for shape, memory in itertools.product(shapes, layouts):
        x = (torch.rand(shape, generator=rng) * 2 - 1).contiguous(memory_format=memory)
        with torch.no_grad():
            reg, probs = mtcnn.pnet(x)
            ours = pnet_forward(mtcnn.pnet, x.clone())
            assert (mtcnn.pnet.conv1(x) < 0).any()  # PReLU's negative side is exercised
        assert torch.equal(ours[0], reg)
        assert torch.equal(ours[1], probs)


def test_max_pool_2x2_is_pnets_pooling_bit_for_bit_in_both_layouts() -> None:
    """P-Net's ``pool1`` (2x2, stride 2, ceil mode): every parity of height and width (an odd last
    row or column is a window of its own), single rows and columns, ties, both memory layouts."""
    pool = torch.nn.MaxPool2d(2, 2, ceil_mode=True)
    rng = torch.Generator().manual_seed(1)
    shapes = (
        (2, 10, 6, 8),
        (2, 10, 7, 8),
        (2, 10, 6, 9),
        (1, 10, 7, 9),
        (1, 10, 1, 1),
        (1, 10, 1, 4),
        (3, 10, 5, 1),
    )
    for shape, memory in itertools.product(shapes, (torch.contiguous_format, torch.channels_last)):
        x = torch.randn(shape, generator=rng).contiguous(memory_format=memory)
        x[0, 0] = 0.5  # a window of equal values
        ours, theirs = max_pool_2x2(x), pool(x)
        assert torch.equal(ours, theirs), shape
        if min(ours.shape[2:]) > 1:  # with a single row or column both layouts are one
            assert ours.is_contiguous(memory_format=memory), (shape, memory)
    rows = torch.randn((2, 10, 9, 8), generator=rng).contiguous(memory_format=torch.channels_last)[:, :, 2:8]
    assert max_pool_2x2(rows).is_contiguous(memory_format=torch.channels_last)  # a band keeps the layout
    assert torch.equal(max_pool_2x2(rows), pool(rows))


@pytest.mark.parametrize("band", [1 << 22, 90])  # whole, and by bands of 2 rows (the last odd)
def test_pooling_before_prelu_gives_the_same_numbers(
    mtcnn: Mtcnn, band: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slopes above 1, between 0 and 1, 0 and negative (where a window's minimum rectifies highest),
    windows straddling 0 and wholly negative ones, odd sizes, both layouts, in one piece and by
    bands of rows."""
    monkeypatch.setattr(mtcnn_pass, "POOL_BAND", band)
    slopes = torch.nn.PReLU(6)
    slopes.weight.data = torch.tensor([1.5, 0.25, 0.0, -0.2, -1.3, 1.0])
    rng = torch.Generator().manual_seed(2)
    for prelu, channels in ((slopes, 6), (mtcnn.pnet.prelu1, 10)):
        for shape, memory in itertools.product(
            ((2, 9, 12), (1, 7, 5), (3, 1, 2)), (torch.contiguous_format, torch.channels_last)
        ):
            x = torch.randn((shape[0], channels, *shape[1:]), generator=rng).contiguous(memory_format=memory)
            x[0, :, :2, :2] = -x[0, :, :2, :2].abs()  # a window wholly below 0
            with torch.no_grad():
                theirs = torch.nn.functional.max_pool2d(prelu(x), 2, 2, ceil_mode=True)
                ours = pooled_prelu(x, prelu)
                assert torch.equal(ours, theirs), shape
                if min(ours.shape[2:]) > 1:
                    assert ours.is_contiguous(memory_format=memory), (shape, memory)


def test_our_networks_give_facenets_numbers_with_its_defaults(mtcnn: Mtcnn, facenet_mtcnn: MTCNN) -> None:
    """Same weights, same layers: every output of the three networks equals facenet's, bit for bit,
    and the thresholds and pyramid factor are facenet's ``MTCNN`` defaults."""
    rng = torch.Generator().manual_seed(1)
    pairs = ((mtcnn.pnet, facenet_mtcnn.pnet, 57), (mtcnn.rnet, facenet_mtcnn.rnet, 24))
    for ours, theirs, side in (*pairs, (mtcnn.onet, facenet_mtcnn.onet, 48)):
        x = torch.rand((5, 3, side, side), generator=rng) * 2 - 1
        with torch.no_grad():
            got, expected = ours(x), theirs(x)
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert torch.equal(a, b)
    assert list(mtcnn.thresholds) == list(facenet_mtcnn.thresholds)
    assert mtcnn.factor == facenet_mtcnn.factor


def test_detecting_faces_imports_neither_facenet_nor_torchvision() -> None:
    """The detector builds its own networks: a fresh process that finds a face has not imported
    facenet-pytorch or torchvision (whose ``torchvision.ops`` imports ``torch._dynamo``)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from detector.faces.extract import FaceExtractor\n"
        "from tests.support import mediagen\n"
        "found = FaceExtractor().detect([mediagen.face_photo()])[0]\n"
        "heavy = [m for m in ('facenet_pytorch', 'torchvision', 'torch._dynamo') if m in sys.modules]\n"
        "print(len(found), heavy)\n"
    )
    repo = Path(__file__).resolve().parents[2]  # where ``tests.support`` imports from
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo
    ).stdout
    assert out.split() == ["1", "[]"]


def test_mtcnn_weights_that_are_not_the_pinned_files_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing or different weights file is a typed error naming the file, never other faces;
    so is a missing facenet-pytorch."""
    import importlib.util
    import shutil

    from detector.errors import WeightsChecksumMismatch, WeightsMissing
    from detector.faces.mtcnn_nets import facenet_weights_dir, load_mtcnn

    for name in ("pnet", "rnet", "onet"):
        shutil.copy(facenet_weights_dir() / f"{name}.pt", tmp_path / f"{name}.pt")
    assert load_mtcnn(torch.device("cpu"), tmp_path).factor == 0.709
    data = bytearray((tmp_path / "rnet.pt").read_bytes())
    data[-100] ^= 1
    (tmp_path / "rnet.pt").write_bytes(bytes(data))
    with pytest.raises(WeightsChecksumMismatch, match=r"rnet\.pt"):
        load_mtcnn(torch.device("cpu"), tmp_path)
    (tmp_path / "onet.pt").unlink()
    (tmp_path / "rnet.pt").unlink()
    with pytest.raises(WeightsMissing, match=r"rnet\.pt"):
        load_mtcnn(torch.device("cpu"), tmp_path)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(WeightsMissing, match="facenet-pytorch is not installed"):
        load_mtcnn(torch.device("cpu"))
