"""The HEIC quality read from the HEVC headers of the primary image (single item or grid tile)."""

from __future__ import annotations

import io
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detector.media.codec_bits import Bits, iso_box
from detector.media.heic_quality import heic_quality, slice_qp
from detector.media.loader import MediaLoader, save_image
from detector.scoring.scope import assess
from tests.support import mediagen


def _heic(image: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    save_image(Image.fromarray(image), buf, "HEIF", quality)
    return buf.getvalue()


@pytest.mark.parametrize("quality", [5, 20, 35, 50, 65, 80, 90])
def test_the_quality_a_heic_was_saved_at_is_read_back(quality: int) -> None:
    assert heic_quality(_heic(mediagen.face_photo(), quality)) == pytest.approx(quality, abs=3)


def test_lower_quality_means_a_higher_slice_qp() -> None:
    photo = mediagen.face_photo()
    qps = [slice_qp(_heic(photo, q)) or 0 for q in (10, 40, 70, 95)]
    assert qps == sorted(qps, reverse=True)
    assert qps[0] > qps[-1] + 30


def test_what_is_not_a_readable_heic_has_no_quality() -> None:
    photo = mediagen.face_photo()
    data = _heic(photo, 30)
    assert heic_quality(data[:300]) is None  # cut inside the item boxes
    mdat = data.index(b"mdat") + 4
    assert heic_quality(data[: mdat + 6]) is None  # cut inside the slice header
    avif = io.BytesIO()
    Image.fromarray(photo).save(avif, format="AVIF", quality=30)
    assert heic_quality(avif.getvalue()) is None  # an av01 item, not hvc1
    assert heic_quality(b"\x00\x00\x00\x08free") is None


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full(kind: bytes, version: int, payload: bytes, flags: int = 0) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big") + payload)


def _grid_heic(single: bytes, tile_listed: bool = True, prefix: bytes = b"") -> bytes:
    """A HEIC whose primary item is a 1x1 ``grid`` over the coded image of ``single``, laid out as
    phones write it (grid descriptor in ``idat``, ``iloc`` version 1) but with other box versions
    than pillow-heif's (``pitm`` / ``iinf`` version 0, ``ipma`` with 16-bit indices); ``prefix``
    goes before the tile's first NAL unit."""
    meta = iso_box(single, b"meta")
    assert meta is not None
    ipco = iso_box(iso_box(meta[4:], b"iprp") or b"", b"ipco")
    hvcc = iso_box(ipco or b"", b"hvcC")
    coded = iso_box(single, b"mdat")
    assert hvcc is not None
    assert coded is not None
    coded = prefix + coded
    ftyp = _box(b"ftyp", b"heic" + bytes(4) + b"mif1heic")
    grid = bytes([0, 0, 0, 0]) + struct.pack(">HH", 512, 512)

    def build(offset: int) -> bytes:
        infe = [
            _full(b"infe", 2, struct.pack(">HH", i, 0) + kind + b"\0")
            for i, kind in ((1, b"hvc1"), (2, b"grid"))
        ]
        tiles = struct.pack(">HHH", 2, 1, 1 if tile_listed else 9)
        ipma = struct.pack(">IHB", 1, 1, 1) + struct.pack(">H", 0x8000 | 1)
        iloc = struct.pack(">BBH", 0x44, 0x00, 2)
        iloc += struct.pack(">HHHHII", 1, 0, 0, 1, offset, len(coded))
        iloc += struct.pack(">HHHHII", 2, 1, 0, 1, 0, len(grid))
        body = b"".join(
            [
                _full(b"hdlr", 0, bytes(4) + b"pict" + bytes(12) + b"\0"),
                _full(b"pitm", 0, struct.pack(">H", 2)),
                _full(b"iinf", 0, struct.pack(">H", 2) + b"".join(infe)),
                _full(b"iref", 0, _box(b"dimg", tiles)),
                _box(b"iprp", _box(b"ipco", _box(b"hvcC", hvcc)) + _full(b"ipma", 0, ipma, flags=1)),
                _full(b"iloc", 1, iloc),
                _box(b"idat", grid),
            ]
        )
        return _full(b"meta", 0, body)

    meta_size = len(build(0))
    return ftyp + build(len(ftyp) + meta_size + 8) + _box(b"mdat", coded)


def test_a_grid_is_read_through_its_first_tile() -> None:
    single = _heic(mediagen.face_photo(), 30)
    assert slice_qp(_grid_heic(single)) == slice_qp(single)
    assert slice_qp(_grid_heic(single, tile_listed=False)) is None  # the grid names a tile not there
    sei = bytes([0x4E, 0x01, 0x05, 0x02, 0xAA, 0xBB, 0x80])  # a prefix SEI unit before the slice
    assert slice_qp(_grid_heic(single, prefix=len(sei).to_bytes(4, "big") + sei)) == slice_qp(single)


def test_a_camera_heic_is_read(shared_data: Path) -> None:
    data = (shared_data / "c2pa" / "no_manifest" / "c2pa-rs__sample1.heic").read_bytes()
    assert slice_qp(data) == 22  # an 8736x5856 camera HEIC (not x265, over the default pixel limit)
    assert heic_quality(data) == 50  # not degraded: MIN_HEIC_QUALITY is 50


def test_heavy_heic_is_degraded_fine_heic_judged_as_usual() -> None:
    loader = MediaLoader()
    heavy = loader.load(_heic(mediagen.face_photo(), 20)).info
    assert heavy.heic_quality == pytest.approx(20, abs=3)
    assert [r.split(" (")[0] for r in assess(heavy, [], [], 49.0).degraded] == ["heavy HEIC compression"]
    fine = loader.load(_heic(mediagen.face_photo(), 80)).info
    scope = assess(fine, [], [], 49.0)
    assert scope.degraded == []
    assert scope.limited == []
    worst = assess(replace(heavy, heic_quality=0), [], [], 49.0)  # quality 0 is read, not unknown
    assert worst.degraded == ["heavy HEIC compression (quality about 0)"]
    assert worst.limited == worst.degraded


def test_exp_golomb_codes() -> None:
    bits = Bits(bytes([0b10100110, 0b01000010, 0b10000000]))  # ue 0, 1, 2, 3, then se -2 (code 4)
    assert [bits.ue(), bits.ue(), bits.ue(), bits.ue()] == [0, 1, 2, 3]
    assert bits.se() == -2
    assert not bits.overrun
    assert Bits(b"\x00").ue() == 0
    assert Bits(b"\x00").f(9) == 0
    cut = Bits(b"\x00")
    cut.ue()
    assert cut.overrun


def test_damaged_headers_never_raise_and_stay_bounded() -> None:
    data = _heic(mediagen.face_photo(), 30)
    rng = np.random.default_rng(0)
    meta_end = data.index(b"mdat") + 64
    for _ in range(300):
        damaged = bytearray(data)
        for at in rng.integers(0, meta_end, 4):
            damaged[at] = int(rng.integers(0, 256))
        qp = slice_qp(bytes(damaged))
        assert qp is None or 0 <= qp <= 51
    hvcc_at = data.index(b"hvcC") + 4
    bomb = bytearray(data)
    bomb[hvcc_at + 22] = 255  # 255 parameter-set arrays claimed in a box of a few dozen bytes
    assert slice_qp(bytes(bomb)) is None
