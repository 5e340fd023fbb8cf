"""Hostile cases, second part: exotic codecs and formats, broken streams, bad metadata and hostile
names."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.support import mediagen
from tests.support.hostile.case import CORRUPT, Case, R, outcomes
from tests.support.hostile.forge import (
    animated,
    c2pa_signature_flipped,
    exif_loop,
    exif_orientation,
    jumbf_garbage,
    many_text_chunks,
    mdat_scrambled,
    no_packets,
    png_with_chunks,
    rotated,
    with_app,
    ztxt,
)
from tests.support.hostile.media import (
    base_avi,
    base_jpeg,
    base_mp4,
    base_webm,
    encode,
    encode_elsewhere,
    face_frames,
    photo,
    save,
    variant,
)

EXOTIC: list[Case] = [
    # exotic codecs and formats
    Case(
        "codec_hevc.mp4",
        "codec",
        lambda d: encode(
            face_frames(6, (96, 64)),
            "mp4",
            "libx265",
            options={"preset": "ultrafast", "x265-params": "log-level=none"},
        ),
        R,
        "decode",
        serve=True,
    ),
    Case(
        "codec_vp9.webm",
        "codec",
        lambda d: encode(
            face_frames(6, (96, 64)), "webm", "libvpx-vp9", options={"deadline": "realtime", "cpu-used": "8"}
        ),
        R,
        "decode",
    ),
    Case("codec_vp8.webm", "codec", lambda d: base_webm(), R, "decode"),
    Case(
        "codec_av1.mkv",
        "codec",
        lambda d: encode_elsewhere(
            face_frames(6, (128, 96)), "matroska", "libsvtav1", options={"preset": "12"}
        ),
        R,
        "decode",
        serve=True,
    ),
    Case(
        "codec_ffv1.mkv", "codec", lambda d: encode(face_frames(6, (96, 64)), "matroska", "ffv1"), R, "decode"
    ),
    Case("codec_mpeg4.avi", "codec", lambda d: base_avi(), R, "decode"),
    Case(
        "codec_mjpeg.avi",
        "codec",
        lambda d: encode(face_frames(6, (96, 64)), "avi", "mjpeg", pix_fmt="yuvj420p"),
        R,
        "decode",
    ),
    Case(
        "codec_mpeg2.mkv",
        "codec",
        lambda d: encode(face_frames(6, (96, 64)), "matroska", "mpeg2video"),
        R,
        "decode",
    ),
    Case(
        "codec_png.mov",
        "codec",
        lambda d: encode(face_frames(4, (96, 64)), "mov", "png", pix_fmt="rgb24"),
        R,
        "decode",
    ),
    Case(
        "codec_prores.mov",
        "codec",
        lambda d: encode(face_frames(4, (96, 64)), "mov", "prores_ks", pix_fmt="yuv422p10le"),
        R,
        "decode",
    ),
    Case(
        "codec_h264_bframes.mp4",
        "codec",
        lambda d: encode(face_frames(12, (96, 64)), "mp4", options={"preset": "ultrafast", "bf": "3"}),
        R,
        "decode",
    ),
    Case("codec_rotated_90.mp4", "codec", lambda d: rotated(), R, "decode"),
    Case("codec_gif_animated.gif", "codec", lambda d: animated("GIF"), R, "decode"),
    Case("codec_apng.png", "codec", lambda d: animated("PNG"), R, "decode"),
    Case("codec_webp_animated.webp", "codec", lambda d: animated("WEBP"), R, "decode"),
    Case("codec_tiff_pages.tiff", "codec", lambda d: animated("TIFF"), R, "decode"),
    Case("codec_heic.heic", "codec", lambda d: save(photo(), "HEIF"), R, "decode"),
    Case("codec_avif.avif", "codec", lambda d: save(photo(), "AVIF"), R, "decode", serve=True),
    Case(
        "codec_png_16bit.png",
        "codec",
        lambda d: save(Image.fromarray(photo()[..., 0].astype(np.uint16) * 257), "PNG"),
        R,
        "decode",
    ),
    Case(
        "codec_jpeg_cmyk.jpg",
        "codec",
        lambda d: save(Image.fromarray(photo()).convert("CMYK"), "JPEG"),
        R,
        "decode",
    ),
    Case(
        "codec_jpeg_progressive.jpg",
        "codec",
        lambda d: save(photo(), "JPEG", progressive=True),
        R,
        "decode",
    ),
    Case(
        "codec_png_palette_alpha.png",
        "codec",
        lambda d: save(Image.fromarray(photo()).convert("P"), "PNG", transparency=0),
        R,
        "decode",
    ),
    Case(
        "codec_tiff_1bit.tiff",
        "codec",
        lambda d: save(Image.fromarray(photo()).convert("1"), "TIFF"),
        R,
        "decode",
    ),
    Case(
        "codec_tiff_float.tiff",
        "codec",
        lambda d: save(Image.fromarray(photo()[..., 0].astype(np.float32) / 255.0), "TIFF"),
        R,
        "decode",
    ),
    # broken streams
    Case(
        "stream_audio_only.mp4",
        "stream",
        lambda d: mediagen.write_audio_only(d / "a.mp4").read_bytes(),
        outcomes("no_video_stream"),
        serve=True,
    ),
    Case("stream_no_packets.mkv", "stream", lambda d: no_packets(), CORRUPT),
    Case(
        "stream_noise_mdat.mp4",
        "stream",
        lambda d: mdat_scrambled(base_mp4(), 0.0),
        outcomes("no_frames_decoded") | R,
        "decode",
        serve=True,
    ),
    Case("stream_noise_tail.mp4", "stream", lambda d: mdat_scrambled(base_mp4(), 0.5), R, "decode"),
    Case("stream_one_frame.mp4", "stream", lambda d: encode(face_frames(1, (96, 64)), "mp4"), R, "decode"),
    # bad metadata
    Case(
        "meta_exif_garbage.jpg",
        "metadata",
        lambda d: with_app(base_jpeg(), 0xE1, b"Exif\x00\x00" + np.random.default_rng(5).bytes(300)),
        R,
        "decode",
    ),
    Case(
        "meta_exif_loop.jpg",
        "metadata",
        lambda d: with_app(base_jpeg(), 0xE1, exif_loop()),
        R,
        "decode",
        serve=True,
    ),
    Case("meta_exif_orientation_9.jpg", "metadata", lambda d: exif_orientation(9), R, "decode"),
    Case(
        "meta_icc_garbage.jpg",
        "metadata",
        lambda d: save(photo(), "JPEG", icc_profile=b"not a profile" * 40),
        R,
        "decode",
    ),
    Case(
        "meta_big_comment.jpg",
        "metadata",
        lambda d: with_app(base_jpeg(), 0xFE, b"c" * 65000),
        R,
        "decode",
    ),
    Case("meta_png_4000_text.png", "metadata", lambda d: many_text_chunks(), R, "decode"),
    Case(
        "meta_png_ztxt_1_4mb.png",
        "metadata",
        lambda d: png_with_chunks(ztxt(b"Comment", 1_400_000)),
        R,
        "decode",
        serve=True,
    ),
    Case("meta_c2pa_garbage.jpg", "metadata", lambda d: jumbf_garbage(), R, "decode"),
    Case(
        "meta_c2pa_signature_flipped.jpg",
        "metadata",
        c2pa_signature_flipped,
        R,
        "decode",
        provenance="invalid",
        serve=True,
    ),
    # hostile names (the bytes are an ordinary photo; the name never decides anything)
    Case(
        "name_traversal.jpg",
        "name",
        lambda d: variant(1),
        R,
        "decode",
        upload_name="../../../../etc/passwd",
        serve=True,
    ),
    Case(
        "name_nul.jpg",
        "name",
        lambda d: variant(2),
        R,
        "decode",
        upload_name="evil\x00.jpg",
        http_expect=outcomes("invalid_request"),
    ),
    Case("name_crlf.jpg", "name", lambda d: variant(3), R, "decode", upload_name="a\r\nX-Injected: 1.jpg"),
    Case(
        "name_html.jpg",
        "name",
        lambda d: variant(4),
        R,
        "decode",
        upload_name="<script>alert(1)</script>.jpg",
        serve=True,
    ),
    Case("name_rtl.jpg", "name", lambda d: variant(5), R, "decode", upload_name="photo\u202egpj.exe"),
    Case("name_unicode.jpg", "name", lambda d: variant(6), R, "decode", upload_name="фото 📷 ünïcødé.jpg"),
    Case("name_dash.jpg", "name", lambda d: variant(7), R, "decode", upload_name="-rf --json.jpg"),
    Case(
        "name_long.jpg",
        "name",
        lambda d: variant(8),
        R,
        "decode",
        upload_name="n" * 300 + ".jpg",
        http_expect=outcomes("invalid_request"),
    ),
]
