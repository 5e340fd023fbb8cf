"""Media intake: sniffing by content, limits, hostile input, image decoding and video probing."""

from __future__ import annotations

import hashlib
import io
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detector.errors import InvalidRequest, TrueframeError, UnsupportedMediaType
from detector.media.loader import Media, MediaLoader
from detector.media.sampling import FrameSampler
from detector.media.sniff import sniff
from detector.settings import LimitSettings, Settings
from tests.support import mediagen

LOSSLESS = {"png", "webp", "bmp", "tiff"}
SAVE_OPTIONS: dict[str, dict[str, object]] = {"webp": {"lossless": True}, "jpeg": {"quality": 95}}


@pytest.fixture(autouse=True)
def no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point every temp-file API at an empty folder and check nothing was left (or written) there."""
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch
    assert list(scratch.iterdir()) == []


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """An asymmetric 96x72 RGB photo (orientation mistakes show up)."""
    return np.asarray(Image.fromarray(mediagen.face_photo()).resize((96, 72), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s, 25 fps, 320x240 H.264 MP4 with a silent audio track."""
    frames = [mediagen.face_frame(i, 50, (320, 240)) for i in range(50)]
    return mediagen.write_video(tmp_path_factory.mktemp("media") / "clip.mp4", frames, with_audio=True)


def encoded(image: np.ndarray | Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    if fmt in {"heic", "avif"}:
        mediagen.write_image(buf, np.asarray(pil), fmt, **options)  # type: ignore[arg-type]
    else:
        pil.save(buf, format=mediagen.IMAGE_FORMATS[fmt][0], **options)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", list(mediagen.IMAGE_FORMATS))
def test_every_image_format_is_sniffed_and_decoded(fmt: str, picture: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "upload.bin"  # the name says nothing; the bytes decide
    path.write_bytes(encoded(picture, fmt, **SAVE_OPTIONS.get(fmt, {})))
    loader = MediaLoader()
    media = loader.load(path)
    assert (media.info.kind, media.info.format) == ("image", fmt)
    assert media.info.mime == f"image/{fmt}"
    assert (media.info.width, media.info.height) == (96, 72)
    assert media.info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert media.name == "upload.bin"
    image, _ = loader.decode_image(media)
    assert image.shape == (72, 96, 3)
    assert image.dtype == np.uint8
    assert image.flags.c_contiguous
    error = np.abs(image.astype(int) - picture.astype(int)).mean()
    assert error == 0 if fmt in LOSSLESS else error < 8


@pytest.mark.parametrize(("ext", "fmt", "mime"), [
    ("mp4", "mp4", "video/mp4"),
    ("mov", "mov", "video/quicktime"),
    ("m4v", "m4v", "video/x-m4v"),
    ("mkv", "mkv", "video/x-matroska"),
    ("webm", "webm", "video/webm"),
    ("avi", "avi", "video/x-msvideo"),
])  # fmt: skip
def test_every_video_format_is_sniffed_probed_and_decoded(
    ext: str, fmt: str, mime: str, tmp_path: Path
) -> None:
    codec = {"webm": "libvpx-vp9", "avi": "mpeg4"}.get(ext, "libx264")
    options = {"deadline": "realtime", "cpu-used": "8"} if codec == "libvpx-vp9" else None
    frames = [mediagen.face_frame(i, 10, (64, 48)) for i in range(10)]
    path = mediagen.write_video(tmp_path / f"clip.{ext}", frames, codec=codec, options=options)
    media = MediaLoader().load(path.read_bytes(), name="clip.jpg")
    assert (media.info.kind, media.info.format, media.info.mime) == ("video", fmt, mime)
    assert (media.info.width, media.info.height, media.info.frame_count) == (64, 48, 10)
    assert media.info.fps == pytest.approx(25.0)
    sample = FrameSampler().sample(media, 4)
    assert [f.image.shape for f in sample.frames] == [(48, 64, 3)] * 4


def test_quicktime_without_ftyp_is_sniffed_as_mov(tmp_path: Path) -> None:
    frames = [mediagen.face_frame(i, 10, (64, 48)) for i in range(10)]
    data = mediagen.drop_box(mediagen.write_video(tmp_path / "old.mov", frames).read_bytes(), b"ftyp")
    assert data[4:8] in {b"wide", b"mdat", b"moov", b"free"}
    media = MediaLoader().load(data)
    assert (media.info.format, media.info.frame_count) == ("mov", 10)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\0\0\0\0" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + bytes(32)


def ebml(doctype: bytes) -> bytes:
    child = b"\x42\x82" + bytes([0x80 | len(doctype)]) + doctype
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(child)]) + child + bytes(16)


@pytest.mark.parametrize(("head", "expected"), [
    (b"MM\0*" + bytes(16), "tiff"),
    (b"II*\0" + bytes(16), "tiff"),
    (ftyp(b"heix", b"mif1"), "heic"),
    (ftyp(b"mif1", b"heic"), "heic"),
    (ftyp(b"mif1", b"avif", b"miaf"), "avif"),
    (ftyp(b"avis"), "avif"),
    (ftyp(b"qt  "), "mov"),
    (ftyp(b"M4V ", b"isom"), "m4v"),
    (ftyp(b"mp42", b"isom"), "mp4"),
    (ftyp(b"XYZW", b"isom", b"mp41"), "mp4"),
    (ebml(b"webm"), "webm"),
    (ebml(b"matroska"), "mkv"),
    (b"RIFF\0\0\0\0AVI LIST" + bytes(16), "avi"),
    (b"\0\0\0\x08wide\0\0\x10\0mdat" + bytes(16), "mov"),
    (b"\0\0\x01\0moov\0\0\0\x6cmvhd" + bytes(16), "mov"),
    (ftyp(b"M4A ", b"mp42", b"isom"), None),
    (ftyp(b"crx "), None),
    (ftyp(b"jp2 "), None),
    (ebml(b"other"), None),
    (b"RIFF\0\0\0\0WAVEfmt " + bytes(16), None),
    (b"BM" + bytes(12) + (999).to_bytes(4, "little") + bytes(16), None),
    (b"ID3\x04" + bytes(32), None),
    (b"%PDF-1.7\n" + bytes(32), None),
    (b"", None),
])  # fmt: skip
def test_sniff_table(head: bytes, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(UnsupportedMediaType):
            sniff(head)
    else:
        assert sniff(head)[1] == expected


def test_big_endian_tiff_16_bit_is_scaled_to_8_bits() -> None:
    grey = np.arange(0, 256 * 24, dtype=np.uint16).reshape(48, 128) % 256
    data = encoded(Image.frombytes("I;16B", (128, 48), (grey * 257).astype(">u2").tobytes()), "tiff")
    assert data[:4] == b"MM\0*"
    image, _ = MediaLoader().decode_image(MediaLoader().load(data))
    assert np.array_equal(image, np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2))


def test_exif_rotated_jpeg_is_turned_upright(picture: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    loader = MediaLoader()
    media = loader.load(encoded(picture, "jpeg", quality=95, exif=exif))
    assert (media.info.width, media.info.height) == (72, 96)
    image = loader.decode_image(media)[0].astype(int)
    right = np.abs(image - np.rot90(picture, k=-1)).mean()
    wrong = np.abs(image - np.rot90(picture, k=1)).mean()
    assert right < 8 < wrong


CMYK_RED = (0, 255, 255, 0)


def rgba_half_transparent() -> Image.Image:
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:, 16:, 3] = 255  # left half fully transparent, right half opaque red-ish
    return Image.fromarray(rgba, "RGBA")


@pytest.mark.parametrize(("image", "fmt", "check"), [
    (rgba_half_transparent(), "png", lambda a: (a[:, :16] == 255).all() and (a[:, 16:, 0] == 200).all()),
    (rgba_half_transparent().convert("LA"), "png", lambda a: (a[:, :16] == 255).all()),
    (rgba_half_transparent(), "gif", lambda a: (a[:, :16] == 255).all()),
    (Image.new("CMYK", (32, 32), CMYK_RED), "jpeg", lambda a: a[..., 0].min() > 200 > a[..., 2].max()),
    (Image.new("L", (32, 32), 77), "png", lambda a: (a == 77).all()),
    (Image.new("1", (32, 32), 1), "bmp", lambda a: (a == 255).all()),
    (Image.new("P", (32, 32), 3), "png", lambda a: a.std() == 0),
    (Image.fromarray(np.full((32, 32), 40 * 257, dtype=np.uint16)), "png", lambda a: (a == 40).all()),
])  # fmt: skip
def test_modes_are_converted_to_rgb(
    image: Image.Image, fmt: str, check: Callable[[np.ndarray], bool]
) -> None:
    loader = MediaLoader()
    decoded, _ = loader.decode_image(loader.load(encoded(image, fmt)))
    assert decoded.shape == (32, 32, 3)
    assert decoded.dtype == np.uint8
    assert check(decoded)


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    loader = MediaLoader()
    decoded, _ = loader.decode_image(loader.load(buf.getvalue()))
    assert (decoded[..., 0] > 200).all()
    assert (decoded[..., 2] < 50).all()


def truncated_jpeg(picture: np.ndarray) -> bytes:
    data = encoded(picture, "jpeg")
    return data[: len(data) // 2]


HOSTILE: list[tuple[str, str, Callable[[np.ndarray, Path], bytes]]] = [
    ("empty.mp4", "empty_media", lambda p, d: b""),
    ("random.mp4", "unsupported_media_type", lambda p, d: np.random.default_rng(7).bytes(4096)),
    ("notes.jpg", "unsupported_media_type", lambda p, d: b"just some text, not a photo\n" * 20),
    ("cut.jpg", "corrupt_media", lambda p, d: truncated_jpeg(p)),
    ("bomb.png", "too_many_pixels", lambda p, d: mediagen.png_claiming(60000, 60000)),
    ("nomoov.mp4", "corrupt_media", lambda p, d: mediagen.drop_box(clip_bytes(d), b"moov")),
    ("dot.png", "media_too_small", lambda p, d: encoded(Image.new("RGB", (1, 1)), "png")),
    ("audio.mp4", "no_video_stream", lambda p, d: mediagen.write_audio_only(d / "a.mp4").read_bytes()),
    ("cut.heic", "corrupt_media", lambda p, d: encoded(p, "heic")[:400]),
]


def clip_bytes(folder: Path) -> bytes:
    frames = [mediagen.face_frame(i, 10, (64, 48)) for i in range(10)]
    return mediagen.write_video(folder / "c.mp4", frames).read_bytes()


def analyse(loader: MediaLoader, source: Path | bytes) -> None:
    """What the pipeline does with an upload: load it, then decode or sample its frames."""
    media = loader.load(source)
    FrameSampler(loader=loader).sample(media, 4)


@pytest.mark.parametrize(("name", "code", "make"), HOSTILE, ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("as_path", [True, False], ids=["path", "bytes"])
def test_hostile_input_gives_typed_error(
    name: str, code: str, make: Callable[[np.ndarray, Path], bytes], as_path: bool,
    picture: np.ndarray, tmp_path: Path,
) -> None:  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    data = make(picture, work)
    path = work / name
    path.write_bytes(data)
    with pytest.raises(TrueframeError) as raised:
        analyse(MediaLoader(), path if as_path else data)
    assert raised.value.code == code, raised.value


LIMITS = [
    ("jpeg", {"max_image_bytes": 1000}, "media_too_large"),
    ("video", {"max_video_bytes": 1000}, "media_too_large"),
    ("video", {"max_video_seconds": 1.5}, "video_too_long"),
    ("video", {"max_pixels": 320 * 239}, "too_many_pixels"),
    ("png", {"max_pixels": 95 * 72}, "too_many_pixels"),
    ("png", {"min_side": 73}, "media_too_small"),
    ("video", {"min_side": 241}, "media_too_small"),
]


@pytest.mark.parametrize(("what", "limits", "code"), LIMITS)
def test_limits_are_enforced_and_overridable(
    what: str, limits: dict[str, float], code: str, picture: np.ndarray, clip_path: Path, tmp_path: Path
) -> None:
    path = clip_path if what == "video" else tmp_path / "img"
    if what != "video":
        path.write_bytes(encoded(picture, what))
    MediaLoader().load(path)  # fine under the defaults
    for source in (path, path.read_bytes()):
        with pytest.raises(TrueframeError) as raised:
            MediaLoader(LimitSettings(**limits)).load(source)
        assert raised.value.code == code


def test_limits_come_from_trueframe_environment(monkeypatch: pytest.MonkeyPatch, picture: np.ndarray) -> None:
    monkeypatch.setenv("TRUEFRAME_LIMITS__MAX_IMAGE_BYTES", "500")
    with pytest.raises(TrueframeError, match="limit is 500") as raised:
        MediaLoader(Settings().limits).load(encoded(picture, "png"))
    assert raised.value.code == "media_too_large"


def test_oversized_path_is_rejected_from_its_size_alone(tmp_path: Path, picture: np.ndarray) -> None:
    path = tmp_path / "huge.jpg"
    with path.open("wb") as fh:
        fh.write(encoded(picture, "jpeg"))
        fh.truncate(60_000_000)  # sparse: the size says too big long before anything is read
    with pytest.raises(TrueframeError) as raised:
        MediaLoader().load(path)
    assert raised.value.code == "media_too_large"


def test_missing_path_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest):
        MediaLoader().load(tmp_path / "nope.mp4")


def test_video_probe_fields(clip_path: Path) -> None:
    media = MediaLoader().load(clip_path)
    info = media.info
    assert (info.kind, info.format, info.codec) == ("video", "mp4", "h264")
    assert (info.width, info.height, info.rotation) == (320, 240, 0)
    assert info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(2.0, abs=0.05)
    assert (info.frame_count, info.frame_count_estimated) == (50, False)
    assert info.has_audio is True
    assert (info.size_bytes, info.sha256) == (len(media.data), hashlib.sha256(media.data).hexdigest())


def test_image_and_video_entry_points_reject_each_other(clip_path: Path, picture: np.ndarray) -> None:
    loader = MediaLoader()
    with pytest.raises(InvalidRequest):
        loader.decode_image(loader.load(clip_path))
    image = loader.load(encoded(picture, "png"), name="not-a-video.mp4")
    assert (image.info.format, image.name) == ("png", "not-a-video.mp4")
    with pytest.raises(InvalidRequest):
        Media.open_video(image)


@pytest.mark.shared_data
def test_real_ffpp_clip_probes(shared_data: Path) -> None:
    info = MediaLoader().load(shared_data / "deepfake/ffpp_c23/original/519.mp4").info
    assert (info.format, info.width, info.height, info.codec) == ("mp4", 640, 480, "h264")
    assert info.duration_s == pytest.approx(30.0, abs=0.5)
    assert info.fps == pytest.approx(25.0)


@pytest.mark.shared_data
def test_a_51_megapixel_camera_heic_is_decoded_not_refused(shared_data: Path) -> None:
    """A camera's own 8736x5856 HEIC (51.2 M pixels) was ``too_many_pixels`` under the old 50 M limit;
    cameras reach 102-108 M, and the default now admits them (decoded, then scaled to the frame size)."""
    loader = MediaLoader()
    media = loader.load(shared_data / "c2pa/no_manifest/c2pa-rs__sample1.heic")
    assert (media.info.width, media.info.height) == (8736, 5856)
    image, scale = loader.decode_image(media, max_side=2048)
    assert image.shape == (1373, 2048, 3)
    assert scale == pytest.approx(2048 / 8736)
    assert 40 < float(image.mean()) < 220  # a photo, not a blank or garbled decode


def test_pillow_bomb_guard_follows_the_pixel_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Pillow warns from 89 M pixels: an image under our limit must load without its warning, a loader
    with a lower limit must not lower Pillow's guard for others, and our own limit still refuses."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)  # Pillow's default, whatever ran before
    path = tmp_path / "bilevel.png"
    Image.new("1", (10_000, 10_000)).save(path)  # 100 M pixels, a few KB
    small_limit = MediaLoader(LimitSettings(max_pixels=200 * 200))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # Pillow's: under its own guard
        with pytest.raises(TrueframeError) as raised:
            small_limit.load(path)
    assert raised.value.code == "too_many_pixels"
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # not lowered
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail the load
        media = MediaLoader().load(path)
    assert (media.info.width, media.info.height) == (10_000, 10_000)
    assert Image.MAX_IMAGE_PIXELS == 120_000_000  # raised to the default limit, never above it
    with pytest.raises(TrueframeError) as raised:
        MediaLoader(LimitSettings(max_pixels=99_000_000)).load(path)
    assert raised.value.code == "too_many_pixels"
