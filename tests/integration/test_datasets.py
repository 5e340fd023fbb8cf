"""Dataset readers on tiny fake trees, shared augmentations, face-cache crops, artefact decoders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datasets.artefacts import DECODERS, simulate_upsampling
from datasets.augment import down_up, jpeg_recompress
from datasets.images import context_crop
from datasets.readers import (
    Sample,
    parse_label,
    read_celebdf,
    read_csv,
    read_dfdc,
    read_faceforensics,
    read_folder,
    read_real_fake,
)
from detector.errors import InvalidRequest
from detector.faces.extract import crop_face
from detector.models.npr import image_patches, patch_grid


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def _view(samples: list[Sample], root: Path) -> list[tuple[str, int, str | None]]:
    return [(s.path.relative_to(root).as_posix(), s.label, s.group) for s in samples]


def test_real_fake_folder_labels_and_groups(tmp_path: Path) -> None:
    _touch(tmp_path, "real/a.jpg", "real/sub/b.png", "df/c.mp4", "df/x.txt", "real/.hidden/d.jpg")
    samples = read_real_fake(tmp_path, fake="df")
    assert _view(samples, tmp_path) == [
        ("real/a.jpg", 0, None),
        ("real/sub/b.png", 0, "sub"),
        ("df/c.mp4", 1, None),
    ]
    assert samples[2].is_video
    assert not samples[0].is_video
    with pytest.raises(InvalidRequest):
        read_real_fake(tmp_path)  # no fake/ folder


def test_plain_folder_is_all_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch(tmp_path, "data/x/1.jpg", "data/2.webp", "other/y.jpg")
    assert [s.label for s in read_folder(tmp_path / "data")] == [0, 0]
    monkeypatch.chdir(tmp_path / "other")
    assert len(read_folder(Path("../data"))) == 2  # a relative root above the cwd is not "hidden"


def test_csv_paths_labels_groups(tmp_path: Path) -> None:
    (tmp_path / "list.csv").write_text(
        "path,label,group\nimgs/a.jpg,real,f\n/abs/b.mp4,1,\n# comment\nc.png,FAKE,m\n", encoding="utf-8"
    )
    samples = read_csv(tmp_path / "list.csv")
    assert [(s.path, s.label, s.group) for s in samples] == [
        (tmp_path / "imgs/a.jpg", 0, "f"),
        (Path("/abs/b.mp4"), 1, None),
        (tmp_path / "c.png", 1, "m"),
    ]
    (tmp_path / "bad.csv").write_text("a.jpg,maybe\n", encoding="utf-8")
    with pytest.raises(InvalidRequest, match="unknown label"):
        read_csv(tmp_path / "bad.csv")


@pytest.mark.parametrize(("text", "label"), [("0", 0), ("1", 1), (" Real ", 0), ("fake", 1)])
def test_parse_label(text: str, label: int) -> None:
    assert parse_label(text) == label


def test_faceforensics_official_and_flat_layouts(tmp_path: Path) -> None:
    official = tmp_path / "ff"
    _touch(
        official,
        "original_sequences/youtube/c23/videos/000.mp4",
        "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4",
        "manipulated_sequences/FaceSwap/c23/videos/000_003.mp4",
        "manipulated_sequences/FaceSwap/c40/videos/000_003.mp4",
    )
    assert [(s.label, s.group) for s in read_faceforensics(official)] == [
        (0, "original"),
        (1, "Deepfakes"),
        (1, "FaceSwap"),
    ]
    assert len(read_faceforensics(official, methods=["Deepfakes"])) == 2
    flat = tmp_path / "flat"
    _touch(flat, "original/519.mp4", "Deepfakes/519_515.mp4")
    assert [(s.path.name, s.label) for s in read_faceforensics(flat)] == [("519.mp4", 0), ("519_515.mp4", 1)]
    with pytest.raises(InvalidRequest):
        read_faceforensics(tmp_path / "ff" / "original_sequences")


def test_celebdf_folders_and_test_list(tmp_path: Path) -> None:
    _touch(tmp_path, "Celeb-real/id0_0000.mp4", "YouTube-real/00000.mp4", "Celeb-synthesis/id0_id1_0000.mp4")
    assert [(s.label, s.group) for s in read_celebdf(tmp_path)] == [
        (0, "Celeb-real"),
        (0, "YouTube-real"),
        (1, "Celeb-synthesis"),
    ]
    (tmp_path / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n", encoding="utf-8"
    )
    assert [s.label for s in read_celebdf(tmp_path, test_only=True)] == [1, 0]  # sorted by path


def test_dfdc_metadata_and_labels_csv(tmp_path: Path) -> None:
    part = tmp_path / "train" / "dfdc_train_part_0"
    part.mkdir(parents=True)
    meta = {"b.mp4": {"label": "FAKE", "original": "a.mp4"}, "a.mp4": {"label": "REAL"}}
    (part / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    assert [(s.path.name, s.label, s.group) for s in read_dfdc(tmp_path / "train")] == [
        ("a.mp4", 0, "a"),
        ("b.mp4", 1, "a"),
    ]
    test = tmp_path / "test"
    test.mkdir()
    (test / "labels.csv").write_text("filename,label\nz.mp4,1\ny.mp4,0\n", encoding="utf-8")
    assert [(s.path.name, s.label) for s in read_dfdc(test)] == [("y.mp4", 0), ("z.mp4", 1)]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "metadata.json").write_text("{}", encoding="utf-8")  # was "no metadata.json files"
    with pytest.raises(InvalidRequest, match=r"1 metadata.json file\(s\) listing no video"):
        read_dfdc(empty)
    (empty / "metadata.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InvalidRequest, match="not a JSON object"):
        read_dfdc(empty)


def test_degradations_keep_shape(face_photo: np.ndarray) -> None:
    crop = face_photo[100:228, 150:278]
    assert np.abs(jpeg_recompress(crop, 95).astype(int) - crop).mean() < 4
    assert down_up(crop, 0.5).shape == crop.shape
    assert np.abs(down_up(crop, 0.5).astype(int) - crop).mean() > 1


def test_context_crop_maps_box_and_landmarks_into_the_crop(face_photo: np.ndarray) -> None:
    box = (180.0, 60.0, 290.0, 200.0)
    landmarks = np.array([[210, 110], [260, 110], [235, 140], [215, 170], [255, 170]], np.float32)
    context, cbox, clm = context_crop(face_photo, box, landmarks, 2.0, 256)
    assert context.shape == (256, 256, 3)
    scale = 256 / round(2.0 * 140)
    np.testing.assert_allclose(clm[0], (landmarks[0] - [235 - 140, 130 - 140]) * scale, atol=1.0)
    assert cbox[0] < clm[0, 0] < cbox[2]
    direct = crop_face(face_photo, box, 2.0, 256).astype(int)
    assert np.abs(direct - context.astype(int)).mean() < 1  # the same crop


@pytest.mark.parametrize("kind", DECODERS)
def test_simulated_upsampling_keeps_content_and_adds_2x2_structure(face_photo: np.ndarray, kind: str) -> None:
    image = face_photo[101:238, 150:301]  # odd sizes on purpose
    out = simulate_upsampling(image, kind, np.random.default_rng(0))  # type: ignore[arg-type]
    again = simulate_upsampling(image, kind, np.random.default_rng(0))  # type: ignore[arg-type]
    assert out.shape == image.shape
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, again)
    assert 0 < np.abs(out.astype(int) - image).mean() < 15  # same picture, top octave replaced

    # the 2x2 cells are no longer independent: their within-cell variation differs from the photo's
    def cell_energy(x: np.ndarray) -> float:
        f = x[: x.shape[0] // 2 * 2, : x.shape[1] // 2 * 2].astype(float)
        return float(np.abs(f - np.repeat(np.repeat(f[::2, ::2], 2, 0), 2, 1)).mean())

    assert cell_energy(out) != pytest.approx(cell_energy(image), rel=0.05)


def test_patch_grid_is_aligned_and_bounded() -> None:
    corners = patch_grid(321, 481, 64, 16)
    assert len(corners) == 16
    assert all(y % 8 == 0 and x % 8 == 0 and y + 64 <= 321 and x + 64 <= 481 for y, x in corners)
    small = image_patches(np.zeros((40, 30, 3), np.uint8), 64, 16)
    assert small.shape == (1, 64, 64, 3)
