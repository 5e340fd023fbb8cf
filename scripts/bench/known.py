"""Known-media matching (not a test): hash lookups per second against 100,000 hashes, and the cost
PDQ adds per image and per video.

* **Index**: multi-index hashing over 16 chunks of 16 bits (:class:`serving.known.index.HashIndex`;
  exact within PDQ's 31-bit threshold), against a brute-force NumPy scan of the same hashes.
  Listed hashes are random 256-bit values; half of the queries are listed hashes with 1-31 bits
  flipped (must match), half are random (must not). Real PDQ hashes are less uniform than random
  bits, so real buckets are fuller: the random case is the index's best case.
* **Store**: the same 100,000 items in the SQLite store (``known_media``), loaded into a
  :class:`serving.known.lookup.StoreKnownMedia` (one-off, at the first lookup), then lookups
  through it (each also asks the store whether the lists changed).
* **PDQ**: hashing a 1080p photo and the 32 sampled frames of 720p and 1080p video (frames as the
  sampler hands them over; the hash works on a copy of at most 512 px).
"""

from __future__ import annotations

import random
import time
from functools import partial
from pathlib import Path

import numpy as np

from detector.settings import Settings
from scripts.bench.media import _view, face_photos
from scripts.bench.sections import Row, timeit

LIST_SIZE = 100_000
QUERIES = 2_000


def _flip(value: int, bits: int, rng: random.Random) -> int:
    for bit in rng.sample(range(256), bits):
        value ^= 1 << bit
    return value


def _queries(listed: list[int], rng: random.Random) -> list[str]:
    near = [_flip(listed[rng.randrange(len(listed))], rng.randint(1, 31), rng) for _ in range(QUERIES // 2)]
    far = [rng.getrandbits(256) for _ in range(QUERIES - len(near))]
    return [f"{v:064x}" for v in near + far]


def rng_value(i: int) -> int:
    return random.Random(i).getrandbits(256)


def _index_rows(listed: list[int], queries: list[str]) -> list[Row]:
    from serving.known.index import HashIndex

    hexes = [f"{value:064x}" for value in listed]
    started = time.perf_counter()
    index = HashIndex()
    index.add_many([(i, [h]) for i, h in enumerate(hexes)])
    built = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(1000):  # one by one, as reviews arrive or scan rows stream in
        index.add(LIST_SIZE + i, [f"{rng_value(i):064x}"])
    one_by_one = 1000 / (time.perf_counter() - started)
    started = time.perf_counter()
    found = sum(1 for q in queries if index.search(q))
    mih = len(queries) / (time.perf_counter() - started)
    words = np.array([[(v >> (64 * k)) & (2**64 - 1) for k in range(4)] for v in listed], dtype=np.uint64)
    sample = queries[:200]
    started = time.perf_counter()
    for q in sample:
        n = int(q, 16)
        probe = np.array([(n >> (64 * k)) & (2**64 - 1) for k in range(4)], dtype=np.uint64)
        distances = np.bitwise_count(words ^ probe).sum(axis=1)
        _ = np.flatnonzero(distances <= 31)
    brute = len(sample) / (time.perf_counter() - started)
    what = f"{LIST_SIZE:,} random hashes, {len(queries):,} queries (half near, half far)"
    return [
        ("known_media", f"MIH index (16 x 16-bit chunks), {what}", f"{mih:,.0f} lookups/s; {found} matched"),
        ("known_media", "brute force (NumPy XOR + popcount over all hashes)", f"{brute:,.0f} lookups/s"),
        ("known_media", f"MIH index build, {LIST_SIZE:,} hashes at once", f"{built:.2f} s"),
        ("known_media", "MIH index, adding one item at a time to 100,000", f"{one_by_one:,.0f} items/s"),
    ]


def _store_rows(tmp: Path, listed: list[int], queries: list[str]) -> list[Row]:
    from detector.provenance.pdq import MediaHashes
    from serving.jobs.store import JobStore
    from serving.known.lists import import_csv
    from serving.known.lookup import StoreKnownMedia

    store = JobStore(tmp / "known" / "trueframe.sqlite3")
    lines = ["item,kind,verdict,reviewed_at,hash"]
    lines += [f"i{i},image,manipulated,1714557600,{v:064x}" for i, v in enumerate(listed)]
    started = time.perf_counter()
    import_csv(store, "bench", "\n".join(lines) + "\n")
    imported = time.perf_counter() - started
    known = StoreKnownMedia(store)
    started = time.perf_counter()
    known.refresh()
    loaded = time.perf_counter() - started
    sample = queries[:500]
    started = time.perf_counter()
    for q in sample:
        known.match(MediaHashes("image", (q,), (100,)))
    rate = len(sample) / (time.perf_counter() - started)
    store.close()
    return [
        ("known_media", f"CSV import of {LIST_SIZE:,} items into SQLite", f"{imported:.2f} s"),
        (
            "known_media",
            f"first lookup: load {LIST_SIZE:,} items from SQLite into the index",
            f"{loaded:.2f} s",
        ),
        ("known_media", "lookups through the store (change check + index)", f"{rate:,.0f} lookups/s"),
    ]


def _pdq_rows() -> list[Row]:
    from detector.provenance.pdq import perceptual_hashes

    photo = face_photos()[0]
    image = _view(photo, 0.3, 1920, 1080)
    rows: list[Row] = []
    seconds = timeit(lambda: perceptual_hashes("image", [image]), repeat=5)
    rows.append(("known_media", "PDQ of a 1080p photo", f"{seconds * 1000:.1f} ms per image"))
    for width, height in ((1280, 720), (1920, 1080)):
        frames = [_view(photo, i / 31, width, height) for i in range(32)]
        seconds = timeit(partial(perceptual_hashes, "video", frames), repeat=3)
        rows.append(
            ("known_media", f"PDQ of 32 sampled {height}p frames", f"{seconds * 1000:.0f} ms per video")
        )
    return rows


def bench_known_media(tmp: Path, settings: Settings) -> list[Row]:
    """Index and store lookups against 100,000 hashes, and PDQ per image and per video."""
    rng = random.Random(2024)
    listed = [rng.getrandbits(256) for _ in range(LIST_SIZE)]
    queries = _queries(listed, rng)
    return [*_index_rows(listed, queries), *_store_rows(tmp, listed, queries), *_pdq_rows()]
