"""Regressions of "Hold under attack and faults": decoding under limits (no model, no Ray cluster).

Every decoded frame against the pixel limit (a container that declares less), images checked from
their own bytes, the per-request decoded-pixel budget and decode time limit (typed 413s), frames
scaled down at decode, memory returned after each analysis, replica work in threads, large PNG text,
strips and blank images out of scope.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from PIL import Image

from detector.errors import DecodeBudgetExceeded, DecodeTimeExceeded, TooManyPixels
from detector.media.loader import MediaLoader
from detector.media.sampling import FrameSampler
from detector.scoring.scope import assess, check_frame
from detector.settings import LimitSettings, Settings
from serving.http.errors import status_of
from tests.support import hostile, mediagen


@pytest.fixture(scope="module")
def vga_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """12 frames, 640x480 H.264."""
    path = tmp_path_factory.mktemp("vga") / "vga.mp4"
    return mediagen.write_face_clip(path, n_frames=12, fps=12, size=(640, 480)).read_bytes()


def _sample(data: bytes, limits: LimitSettings, n: int = 4) -> Any:
    loader = MediaLoader(limits)
    return FrameSampler(loader=loader).sample(loader.load(data), n)


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_a_decoded_frame_larger_than_the_header_said_is_too_many_pixels(tmp_path: Path) -> None:
    liar = hostile.by_name("bomb_mjpeg_frames.mkv").make(tmp_path)  # declares 320x240, carries 11000x11000
    loader = MediaLoader()
    media = loader.load(liar)
    assert (media.info.width, media.info.height) == (320, 240), "the probe believes the header"
    with pytest.raises(TooManyPixels) as raised:
        FrameSampler(loader=loader).sample(media, 2)
    assert "11000x11000" in raised.value.message
    assert status_of(raised.value.code) == 413


def test_an_image_is_checked_from_its_own_bytes_not_from_its_probe() -> None:
    limits = LimitSettings(max_pixels=200 * 200)
    loader = MediaLoader(limits)
    small = loader.load(_png(Image.new("RGB", (100, 100), (10, 20, 30))))
    lying = replace(small, data=_png(Image.new("RGB", (400, 400), (10, 20, 30))))  # info says 100x100
    with pytest.raises(TooManyPixels):
        loader.decode_image(lying)


def test_a_jpeg_strip_decoded_at_a_reduced_scale_is_not_too_small() -> None:
    """A 60000x16 JPEG decodes at 1/8 as 7500x2: that short side must not read as a 2-pixel image."""
    buf = io.BytesIO()
    Image.new("L", (60_000, 16), 30).save(buf, format="JPEG")
    loader = MediaLoader()
    image, scale = loader.decode_image(loader.load(buf.getvalue()), max_side=2048)
    assert max(image.shape[:2]) <= 2048
    assert scale == pytest.approx(max(image.shape[:2]) / 60_000)


def test_the_decoded_pixel_budget_is_a_typed_413(vga_clip: bytes) -> None:
    _sample(vga_clip, LimitSettings())  # fine under the defaults
    with pytest.raises(DecodeBudgetExceeded) as raised:
        _sample(vga_clip, LimitSettings(max_decoded_pixels=3 * 640 * 480))
    assert raised.value.code == "decode_budget_exceeded"
    assert status_of(raised.value.code) == 413


def test_the_decode_time_limit_is_a_typed_413(vga_clip: bytes) -> None:
    with pytest.raises(DecodeTimeExceeded) as raised:
        _sample(vga_clip, LimitSettings(max_decode_seconds=1e-6))
    assert raised.value.code == "decode_time_exceeded"
    assert status_of(raised.value.code) == 413


def test_limits_come_from_the_settings() -> None:
    limits = Settings().limits
    assert limits.max_decoded_pixels == 20_000_000_000
    assert limits.max_decode_seconds == 120.0
    assert limits.frame_max_side == 2048


def test_sampled_frames_and_large_images_are_scaled_down_at_decode(vga_clip: bytes) -> None:
    sample = _sample(vga_clip, LimitSettings(frame_max_side=256))
    assert {f.image.shape for f in sample.frames} == {(192, 256, 3)}
    assert [f.scale for f in sample.frames] == pytest.approx([0.4] * len(sample.frames))
    buf = io.BytesIO()
    Image.fromarray(mediagen.face_photo()).resize((3000, 2000)).save(buf, format="JPEG")
    big = _sample(buf.getvalue(), LimitSettings(frame_max_side=256), n=1)
    assert big.frames[0].image.shape == (171, 256, 3)


class _Pipeline:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def analyze(self, *args: Any) -> Any:
        if self.error is not None:
            raise self.error
        return "report"


@pytest.mark.parametrize("error", [None, TooManyPixels("big")], ids=["report", "error"])
def test_memory_is_returned_after_every_analysis(
    monkeypatch: pytest.MonkeyPatch, error: Exception | None
) -> None:
    from detector import runtime
    from detector.stages import Options
    from serving.analyzer import InProcessAnalyzer

    released: list[int] = []
    monkeypatch.setattr(runtime, "release_memory", lambda collect=False: released.append(1 + collect))
    analyzer = InProcessAnalyzer(Settings(), pipeline=cast(Any, _Pipeline(error)))
    if error is None:
        assert asyncio.run(analyzer.analyze(b"x", None, Options())) == "report"
    else:
        with pytest.raises(TooManyPixels):
            asyncio.run(analyzer.analyze(b"x", None, Options()))
    assert released == ([1] if error is None else [2])  # after an error the cycles are collected too


def test_release_memory_runs_anywhere() -> None:
    from detector.runtime import release_memory

    release_memory()  # glibc: malloc_trim; elsewhere a no-op, never an error


def _replica(cls: Any) -> Any:
    return object.__new__(cast(Any, cls).func_or_class)  # the class without building its stage


def test_media_replicas_decode_in_threads_concurrently_and_return_memory(
    monkeypatch: pytest.MonkeyPatch, vga_clip: bytes
) -> None:
    from serving.ray import deployments

    replica = _replica(deployments.MediaDeployment)
    replica.loader = MediaLoader()
    replica.sampler = FrameSampler(loader=replica.loader)
    released: list[int] = []
    monkeypatch.setattr(deployments, "release_memory", lambda collect=False: released.append(1 + collect))
    info, sample, _ = asyncio.run(replica.prepare(vga_clip, "v.mp4", 2))
    assert (info.width, len(sample.frames), released) == (640, 2, [1])

    threads: list[int] = []

    def slow(data: bytes, name: str | None, frames: int | None) -> tuple[int, int, int]:
        threads.append(threading.get_ident())
        time.sleep(0.5)
        return 0, 0, 0

    replica._prepare = slow

    async def two() -> float:
        started = time.monotonic()
        await asyncio.gather(replica.prepare(b"a", None, 1), replica.prepare(b"b", None, 1))
        return time.monotonic() - started

    assert asyncio.run(two()) < 0.9, "one slow decode must not hold the replica's other requests"
    assert threading.get_ident() not in threads


def test_provenance_replicas_read_in_a_thread() -> None:
    from serving.ray import deployments

    replica = _replica(deployments.ProvenanceDeployment)
    seen: list[int] = []

    class Reader:
        def read(self, data: bytes, mime: str | None) -> str:
            seen.append(threading.get_ident())
            return "report"

    replica.reader = Reader()
    assert asyncio.run(replica.read(b"x", "image/png")) == "report"
    assert len(seen) == 1
    assert seen[0] != threading.get_ident()


def test_the_shipped_config_runs_two_media_replicas() -> None:
    from serving.ray.app import load_config

    assert load_config().deployments["media"]["num_replicas"] == 2


def test_a_png_with_a_1_4_mb_ztxt_chunk_is_accepted() -> None:
    text = b"Comment\x00\x00" + zlib.compress(b"A" * 1_400_000, 9)
    chunk = len(text).to_bytes(4, "big") + b"zTXt" + text + zlib.crc32(b"zTXt" + text).to_bytes(4, "big")
    plain = _png(Image.fromarray(mediagen.face_photo()[::8, ::8]))
    data = plain[:33] + chunk + plain[33:]
    loader = MediaLoader()
    image, _ = loader.decode_image(loader.load(data))
    assert image.shape == (64, 64, 3)


def test_an_all_black_16x100000_strip_is_out_of_scope() -> None:
    loader = MediaLoader()
    media = loader.load(_png(Image.new("L", (16, 100_000))))
    sample = FrameSampler(loader=loader).sample(media)
    scope = assess(media.info, [f.image for f in sample.frames], [], 40.0)
    assert not scope.photographic
    assert any("strip" in reason for reason in scope.out_of_scope)
    assert any("blank" in reason for reason in scope.out_of_scope)
    blank = loader.load(_png(Image.new("RGB", (256, 256))))
    blank_frames = FrameSampler(loader=loader).sample(blank).frames
    assert assess(blank.info, [f.image for f in blank_frames], [], 40.0).out_of_scope == [
        "blank (no detail to judge)"
    ]


def test_noise_is_still_in_scope() -> None:
    rng = np.random.default_rng(0)
    loader = MediaLoader()
    media = loader.load(_png(Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))))
    frames = FrameSampler(loader=loader).sample(media).frames
    assert assess(media.info, [f.image for f in frames], [], 40.0).photographic


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def test_heavy_compression_and_tiny_pictures_are_degraded_small_faces_only_limited() -> None:
    loader = MediaLoader()
    photo = mediagen.face_photo()
    cases = {
        "heavy": loader.load(_jpeg(photo, 12)),
        "tiny": loader.load(_jpeg(np.asarray(Image.fromarray(photo).resize((96, 96))), 90)),
        "plain": loader.load(_jpeg(photo, 90)),
    }
    scopes = {
        name: assess(
            media.info, [f.image for f in FrameSampler(loader=loader).sample(media).frames], sides, 49.0
        )
        for (name, media), sides in zip(cases.items(), ([200.0], [40.0], [30.0]), strict=True)
    }
    assert scopes["heavy"].degraded == scopes["heavy"].limited
    assert [r.split(" (")[0] for r in scopes["heavy"].degraded] == ["heavy JPEG compression"]
    assert [r.split(" (")[0] for r in scopes["tiny"].degraded] == ["a tiny picture"]
    assert [r.split(" (")[0] for r in scopes["tiny"].limited] == [
        "a tiny picture",
        "faces too small to judge",
    ]
    assert scopes["plain"].degraded == []
    assert scopes["plain"].limited == ["faces too small to judge (largest 30 px; the face model needs 49)"]
    assert all(s.photographic for s in scopes.values())


def test_a_heavily_compressed_photo_is_degraded_not_a_drawing() -> None:
    from skimage import data

    loader = MediaLoader()
    rocket = loader.load(_jpeg(np.asarray(data.rocket()), 5))  # half its 8x8 blocks flat, few colours
    frames = [f.image for f in FrameSampler(loader=loader).sample(rocket).frames]
    assert not check_frame(frames[0]).photographic, "the drawing test alone would call it a drawing"
    scope = assess(rocket.info, frames, [], 49.0)
    assert scope.photographic
    assert [r.split(" (")[0] for r in scope.degraded] == ["heavy JPEG compression"]


def _starved_clip_with_loud_audio(path: Path) -> Path:
    """8 s of the moving face at 256x256, H.264 CRF 51, muxed with 192 kbit/s of stereo noise."""
    import av

    rng = np.random.default_rng(3)
    with av.open(str(path), mode="w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width = video.height = 256
        video.pix_fmt, video.options = "yuv420p", {"crf": "51", "preset": "medium"}
        audio = out.add_stream("aac", rate=48000, layout="stereo")
        audio.bit_rate = 192_000
        noise = rng.uniform(-0.5, 0.5, (2, 48000 * 8)).astype(np.float32)
        chunk = av.AudioFrame.from_ndarray(noise, format="fltp", layout="stereo")
        chunk.sample_rate, chunk.pts = 48000, 0
        for packet in [*audio.encode(chunk), *audio.encode()]:
            out.mux(packet)
        for i in range(200):
            image = mediagen.face_frame(i, 200, (256, 256))
            out.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(video.encode())
    return path


def test_a_starved_picture_is_degraded_whatever_its_audio_weighs(tmp_path: Path) -> None:
    from detector.media.loader import _video_stream_bytes

    data = _starved_clip_with_loud_audio(tmp_path / "starved.mp4").read_bytes()
    loader = MediaLoader()
    media = loader.load(data)
    info = media.info
    assert info.has_audio
    assert info.video_bytes is not None
    assert info.video_bytes < len(data) / 3, "most of the file is the audio track"
    pixels = info.duration_s * info.fps * info.width * info.height  # type: ignore[operator]
    assert len(data) * 8 / pixels > 0.02, "counted with its audio, the picture would not look starved"
    frames = [f.image for f in FrameSampler(loader=loader).sample(media, 4).frames]
    degraded = assess(info, frames, [], 49.0).degraded
    assert [r.split(" (")[0] for r in degraded] == ["heavily compressed video"]
    assert _video_stream_bytes(data, "mp4", 3) is None  # a stream of more packets than it may hold
