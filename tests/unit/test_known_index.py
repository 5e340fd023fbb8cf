"""The multi-index hashing index against brute force, media-level matching rules, and the CSV
format of hash lists (no store, no service)."""

from __future__ import annotations

import random

import pytest

from detector.errors import InvalidRequest
from serving.known.index import HashIndex, match_hashes
from serving.known.lists import parse_csv


def _flip(value: int, bits: int, rng: random.Random) -> int:
    for bit in rng.sample(range(256), bits):
        value ^= 1 << bit
    return value


def _hex(value: int) -> str:
    return f"{value:064x}"


def test_search_finds_exactly_what_brute_force_finds_within_31_bits() -> None:
    rng = random.Random(7)
    base = [rng.getrandbits(256) for _ in range(300)]
    index = HashIndex()
    for i, value in enumerate(base):
        index.add(i, [_hex(value)])
    for distance in (0, 1, 15, 30, 31, 32, 40):
        for i in rng.sample(range(300), 20):
            query = _flip(base[i], distance, rng)
            expected = {
                j: (v ^ query).bit_count() for j, v in enumerate(base) if (v ^ query).bit_count() <= 31
            }
            assert index.search(_hex(query)) == expected, distance
    index.remove(3)
    assert 3 not in index.search(_hex(base[3]))
    assert len(index) == 299


def test_a_video_matches_when_half_its_frames_do_and_kinds_never_mix() -> None:
    rng = random.Random(3)
    frames = [rng.getrandbits(256) for _ in range(8)]
    index = HashIndex()
    index.add(1, [_hex(f) for f in frames])
    index.add(2, [_hex(frames[0])])  # an image identical to the first frame
    kinds = {1: "video", 2: "image"}
    half = [_hex(_flip(f, 10, rng)) for f in frames[:4]] + [_hex(rng.getrandbits(256)) for _ in range(4)]
    hit = match_hashes(index, half, "video", kinds)
    assert hit is not None
    assert (hit.entry, hit.share) == (1, 0.5)
    assert hit.distance == 10
    assert (
        match_hashes(index, half[:3] + [_hex(rng.getrandbits(256)) for _ in range(5)], "video", kinds) is None
    )
    image = match_hashes(index, [_hex(frames[0])], "image", kinds)
    assert image is not None
    assert image.entry == 2
    assert match_hashes(index, [], "image", kinds) is None


def test_the_newest_of_equally_close_entries_wins() -> None:
    index = HashIndex()
    value = _hex(12345 << 100)
    index.add(1, [value])
    index.add(2, [value])
    hit = match_hashes(index, [value], "image", {1: "image", 2: "image"}, {1: 10.0, 2: 20.0})
    assert hit is not None
    assert hit.entry == 2


def test_hash_list_csv_groups_a_videos_frames_and_refuses_bad_rows() -> None:
    text = (
        "item,kind,verdict,reviewed_at,hash\n"
        f"v1,video,manipulated,2024-05-01T10:00:00Z,{'a' * 64}\n"
        f"v1,video,manipulated,2024-05-01T10:00:00Z,{'b' * 64}\n"
        f"p1,image,authentic,1714557600,{'C' * 64}\n"
    )
    items = parse_csv(text)
    assert items["v1"]["hashes"] == ["a" * 64, "b" * 64]
    assert items["v1"]["reviewed_at"] == items["p1"]["reviewed_at"] == 1714557600.0
    assert items["p1"]["hashes"] == ["c" * 64]
    for bad in (
        "item,kind,verdict,reviewed_at,hash\nx,image,fake,1," + "a" * 64 + "\n",
        "item,kind,verdict,reviewed_at,hash\nx,image,authentic,1,abc\n",
        "item,kind,verdict,reviewed_at,hash\nx,image,authentic,yesterday," + "a" * 64 + "\n",
        "item,kind,verdict,reviewed_at,hash\nx,image,authentic,1,"
        + "a" * 64
        + "\nx,video,authentic,1,"
        + "b" * 64,
        "hash\n" + "a" * 64,
    ):
        with pytest.raises(InvalidRequest):
            parse_csv(bad)
