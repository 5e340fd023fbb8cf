"""The multi-index hashing index against brute force, media-level matching rules, and the CSV
format of hash lists (no service; one test imports into a SQLite store)."""

from __future__ import annotations

import random
from pathlib import Path

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


HEADER = "item,kind,verdict,reviewed_at,hash\n"


@pytest.mark.parametrize(
    "when",
    ["1e20", "inf", "-inf", "nan", "-1e15", "-1", "0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z", "", " "],
)
def test_a_reviewed_at_outside_1970_to_now_is_refused_with_its_line(when: str) -> None:
    """Before: 1e20, inf or -1e15 were stored, and every later analysis matching the item failed with
    500 (its decision time could not be made a date), as did the list's export; nan broke the insert."""
    text = HEADER + f"ok,image,authentic,1714557600,{'a' * 64}\nx,image,manipulated,{when},{'b' * 64}\n"
    with pytest.raises(InvalidRequest, match="line 3: reviewed_at"):
        parse_csv(text)


def test_a_review_time_a_day_ahead_is_refused_and_clock_slack_is_not() -> None:
    import time

    soon, later = time.time() + 3600, time.time() + 3 * 86_400
    assert parse_csv(HEADER + f"x,image,authentic,{soon},{'a' * 64}\n")["x"]["reviewed_at"] == soon
    with pytest.raises(InvalidRequest, match="line 2: reviewed_at"):
        parse_csv(HEADER + f"x,image,authentic,{later},{'a' * 64}\n")


def test_a_short_row_is_refused_with_its_line() -> None:
    """reviewed_at last and missing from a row: a TypeError (500) before."""
    text = "item,kind,verdict,hash,reviewed_at\n" + f"x,image,manipulated,{'a' * 64}\n"
    with pytest.raises(InvalidRequest, match="line 2: reviewed_at is missing"):
        parse_csv(text)


def test_unnamed_rows_are_named_after_their_hash_and_repeated_hashes_kept_once() -> None:
    text = HEADER + "".join(
        f"{item},{kind},manipulated,1714557600,{value * 64}\n"
        for item, kind, value in [
            ("", "image", "a"),
            ("", "image", "b"),
            ("v", "video", "c"),
            ("v", "video", "c"),
        ]
    )
    items = parse_csv(text)
    assert sorted(items) == [f"hash-{'a' * 64}", f"hash-{'b' * 64}", "v"]
    assert items["v"]["hashes"] == ["c" * 64]


def test_unnamed_rows_of_two_imports_do_not_replace_each_other(tmp_path: Path) -> None:
    """Before: both imports named their rows line-2, line-3..., so the second import's line 2 replaced
    the first's: a manipulated decision vanished without a word."""
    from serving.jobs.store import JobStore
    from serving.known.lists import export_csv, import_csv

    store = JobStore(tmp_path / "s.sqlite3")
    try:
        first = (
            HEADER + f",image,manipulated,1714557600,{'1' * 64}\n,image,ai_generated,1714557600,{'2' * 64}\n"
        )
        assert import_csv(store, "partner", first) == (2, 2)
        assert import_csv(store, "partner", HEADER + f",image,authentic,1714557600,{'3' * 64}\n") == (1, 1)
        again = HEADER + f",image,manipulated,1714557600,{'1' * 64}\n" * 3  # the same decision, resent
        assert import_csv(store, "partner", again) == (1, 1)
        rows = export_csv(store, "partner").splitlines()[1:]
        assert sorted(row.split(",")[2] for row in rows) == ["ai_generated", "authentic", "manipulated"]
    finally:
        store.close()
