"""Hostile cases, first part: truncations, decompression bombs and huge claims, header lies and
polyglots."""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image

from tests.support import mediagen
from tests.support.hostile.case import BIG, CORRUPT, PIXELS, UNSUPPORTED, Case, R, outcomes
from tests.support.hostile.forge import (
    avi_dims,
    bmp_claiming,
    brand,
    ebml_doctype,
    gif_claiming,
    half,
    long_gap,
    mdhd_timescale,
    mjpeg_liar,
    noise_strip,
    patch_avc_dims,
    png_with_chunks,
    sof_claiming,
    tiff_claiming,
    webp_canvas,
    xmp_bomb,
    zip_archive,
    ztxt,
)
from tests.support.hostile.media import (
    base_avi,
    base_jpeg,
    base_mp4,
    base_png,
    base_webm,
    encode,
    face_frames,
    faststart,
    photo,
    save,
    webm_gops,
)
from tests.support.hostile.simple import png_1x1

MALFORMED: list[Case] = [
    # truncations
    Case("trunc_empty.mp4", "truncation", lambda d: b"", outcomes("empty_media"), serve=True),
    Case("trunc_jpeg_half.jpg", "truncation", lambda d: half(base_jpeg()), CORRUPT, "decode", serve=True),
    Case("trunc_jpeg_header.jpg", "truncation", lambda d: base_jpeg()[:180], CORRUPT),
    Case("trunc_png_half.png", "truncation", lambda d: half(base_png()), CORRUPT, "decode", serve=True),
    Case("trunc_png_ihdr.png", "truncation", lambda d: base_png()[:20], CORRUPT),
    Case("trunc_gif_half.gif", "truncation", lambda d: half(save(photo(), "GIF")), CORRUPT, "decode"),
    Case("trunc_webp_half.webp", "truncation", lambda d: half(save(photo(), "WEBP")), CORRUPT),
    Case("trunc_bmp_half.bmp", "truncation", lambda d: half(save(photo(), "BMP")), CORRUPT, "decode"),
    Case("trunc_tiff_half.tiff", "truncation", lambda d: half(save(photo(), "TIFF")), CORRUPT, "decode"),
    Case("trunc_heic.heic", "truncation", lambda d: save(photo(), "HEIF")[:400], CORRUPT, "decode"),
    Case("trunc_avif_half.avif", "truncation", lambda d: half(save(photo(), "AVIF")), CORRUPT),
    Case("trunc_mp4_half.mp4", "truncation", lambda d: half(base_mp4()), CORRUPT, serve=True),
    Case("trunc_mp4_faststart_half.mp4", "truncation", lambda d: half(faststart(d)), R, "decode", serve=True),
    Case("trunc_mp4_ftyp_only.mp4", "truncation", lambda d: base_mp4()[:32], CORRUPT),
    Case("trunc_mp4_nomoov.mp4", "truncation", lambda d: mediagen.drop_box(base_mp4(), b"moov"), CORRUPT),
    Case(
        "trunc_webm_60pct.webm",
        "truncation",
        lambda d: webm_gops()[: len(webm_gops()) * 6 // 10],
        R,
        "decode",
    ),
    Case(
        "trunc_mkv_header.mkv",
        "truncation",
        lambda d: encode(face_frames(4, (96, 64)), "matroska")[:60],
        CORRUPT,
    ),
    Case("trunc_avi_half.avi", "truncation", lambda d: half(base_avi()), CORRUPT),
    # decompression bombs and huge claims
    Case("bomb_png_claim.png", "bomb", lambda d: mediagen.png_claiming(60000, 60000), PIXELS, serve=True),
    Case("bomb_png_real.png", "bomb", lambda d: save(Image.new("1", (BIG, BIG)), "PNG"), PIXELS, serve=True),
    Case("bomb_gif_screen.gif", "bomb", lambda d: gif_claiming(65535, 65535), PIXELS),
    Case("bomb_jpeg_sof.jpg", "bomb", lambda d: sof_claiming(base_jpeg(), 65000, 65000), PIXELS, serve=True),
    Case("bomb_webp_canvas.webp", "bomb", lambda d: webp_canvas(16384, 16384), PIXELS | CORRUPT),
    Case("bomb_tiff_claim.tiff", "bomb", lambda d: tiff_claiming(100_000, 100_000), PIXELS),
    Case("bomb_bmp_claim.bmp", "bomb", lambda d: bmp_claiming(40_000, 40_000), PIXELS),
    Case("bomb_mjpeg_frames.mkv", "bomb", lambda d: mjpeg_liar(BIG), PIXELS, "decode", serve=True),
    Case("bomb_ztxt_64mb.png", "bomb", lambda d: png_with_chunks(ztxt(b"Comment", 64_000_000)), CORRUPT),
    Case("bomb_xmp_entities.jpg", "bomb", lambda d: xmp_bomb(), R, "decode", serve=True),
    # header lies
    Case("lie_png_named.mp4", "header lie", lambda d: base_png(), R, "decode", serve=True),
    Case("lie_mp4_named.jpg", "header lie", lambda d: base_mp4(), R, "decode", serve=True),
    Case("lie_jpeg_magic_mp4.jpg", "header lie", lambda d: b"\xff\xd8\xff" + base_mp4(), CORRUPT),
    Case(
        "lie_png_bad_crc.png",
        "header lie",
        lambda d: base_png()[:29] + b"\x00\x00\x00\x00" + base_png()[33:],
        CORRUPT,
    ),
    Case("lie_jpeg_no_eoi.jpg", "header lie", lambda d: base_jpeg()[:-2], CORRUPT, "decode"),
    Case("lie_gif_small_screen.gif", "header lie", lambda d: gif_claiming(4, 4, image_side=64), R, "decode"),
    Case(
        "lie_mp4_sample_entry.mp4",
        "header lie",
        lambda d: patch_avc_dims(base_mp4(), 30000, 30000),
        R | PIXELS,
        "decode",
        serve=True,
    ),
    Case("lie_mp4_audio_brand.mp4", "header lie", lambda d: brand(base_mp4(), b"M4A "), UNSUPPORTED),
    Case("lie_mp4_unknown_brand.mp4", "header lie", lambda d: brand(base_mp4(), b"zzzz"), UNSUPPORTED),
    Case("lie_ebml_doctype.mkv", "header lie", lambda d: ebml_doctype(base_webm(), b"xxxx"), UNSUPPORTED),
    Case(
        "lie_riff_wave.avi",
        "header lie",
        lambda d: b"RIFF" + struct.pack("<I", 100) + b"WAVEfmt " + bytes(96),
        UNSUPPORTED,
    ),
    Case(
        "lie_video_700s_gap.mp4", "header lie", lambda d: long_gap(), outcomes("video_too_long"), serve=True
    ),
    Case("lie_one_pixel.png", "header lie", lambda d: png_1x1(), outcomes("media_too_small"), serve=True),
    Case(
        "lie_tiny_video.mp4",
        "header lie",
        lambda d: encode(face_frames(4, (8, 8)), "mp4"),
        outcomes("media_too_small"),
    ),
    Case(
        "lie_strip_16x100000.png",
        "header lie",
        lambda d: save(Image.new("L", (16, 100_000)), "PNG"),
        R,
        "decode",
        verdict="out_of_scope",
        serve=True,
    ),
    Case(
        "lie_jpeg_strip_60000x16.jpg",
        "header lie",
        lambda d: save(Image.new("L", (60_000, 16)), "JPEG"),
        R,
        "decode",
        verdict="out_of_scope",
        serve=True,
    ),
    Case(
        "lie_video_strip_4000x16.mp4",
        "header lie",
        lambda d: encode(noise_strip(4000, 16, 4), "mp4"),
        R,
        "decode",
        verdict="out_of_scope",
    ),
    Case("lie_mp4_timescale_zero.mp4", "header lie", lambda d: mdhd_timescale(base_mp4(), 0), R, "decode"),
    Case(
        "lie_avi_frame_size.avi",
        "header lie",
        lambda d: avi_dims(base_avi(), 30000, 30000),
        R | PIXELS,
        "decode",
    ),
    Case(
        "lie_blank_white.png",
        "header lie",
        lambda d: save(Image.new("RGB", (256, 256), "white"), "PNG"),
        R,
        "decode",
        verdict="out_of_scope",
    ),
    # polyglots and non-media
    Case("poly_jpeg_zip.jpg", "polyglot", lambda d: base_jpeg() + zip_archive(), R, "decode", serve=True),
    Case(
        "poly_png_html.png",
        "polyglot",
        lambda d: base_png() + b"<html><script>alert(1)</script></html>",
        R,
        "decode",
    ),
    Case(
        "poly_gif_script.gif",
        "polyglot",
        lambda d: save(photo(), "GIF", comment=b"*/=alert(1)/*") + b"//",
        R,
        "decode",
    ),
    Case("poly_mp4_jpeg_tail.mp4", "polyglot", lambda d: base_mp4() + base_jpeg(), R, "decode"),
    Case(
        "poly_pdf.jpg",
        "polyglot",
        lambda d: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n" * 20,
        UNSUPPORTED,
    ),
    Case("poly_zip.mp4", "polyglot", lambda d: zip_archive(), UNSUPPORTED, serve=True),
    Case(
        "poly_svg.jpg",
        "polyglot",
        lambda d: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        UNSUPPORTED,
    ),
    Case("poly_elf.mp4", "polyglot", lambda d: b"\x7fELF\x02\x01\x01" + bytes(500), UNSUPPORTED),
    Case("poly_random.mp4", "polyglot", lambda d: np.random.default_rng(7).bytes(4096), UNSUPPORTED),
    Case("poly_text.jpg", "polyglot", lambda d: b"just some text, not a photo\n" * 20, UNSUPPORTED),
]
