"""Near-duplicate search over PDQ hashes: multi-index hashing, and media-level matching on top.

**Index.** Multi-index hashing (Norouzi, Punjani and Fleet, CVPR 2012) over 16 chunks of 16 bits:
if two 256-bit hashes differ in at most 31 bits, then by the pigeonhole principle at least one of
their 16 chunks differs in at most ``31 // 16 = 1`` bit. Each chunk has a table from its 16-bit
value to the hashes holding it; a query probes, per chunk, its own value and the 16 values one bit
away (272 probes, one vectorised binary search), then checks the full distance of each candidate
(one vectorised XOR and popcount). Exact within the radius: no match closer than the threshold is
ever missed.

**Media.** An image matches an indexed image within :data:`~detector.provenance.pdq.PDQ_THRESHOLD`
bits; a video matches an indexed video when at least :data:`~detector.provenance.pdq.VIDEO_MATCH_SHARE`
of its usable frame hashes are within the threshold of one of that video's frames. Kinds are not
mixed. The best match is the highest share, then the smallest distance, then the newest entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from detector.provenance.pdq import PDQ_THRESHOLD, VIDEO_MATCH_SHARE

CHUNKS = 16
CHUNK_BITS = 16
_MASK = (1 << CHUNK_BITS) - 1
_FLIPS = np.array([0, *(1 << b for b in range(CHUNK_BITS))], dtype=np.int64)
_CHUNK_TAGS = np.arange(CHUNKS, dtype=np.int64) << CHUNK_BITS
HEX_DIGITS = 64


def parse_hashes(values: Sequence[str]) -> np.ndarray:
    """64-hex-digit PDQ hashes as an ``(n, 4)`` array of 64-bit words, lowest word first."""
    for value in values:
        if len(value) != HEX_DIGITS:
            raise ValueError(f"a PDQ hash has 64 hex digits, not {len(value)}")
    raw = bytes.fromhex("".join(values))  # ValueError for anything but hex digits
    return np.frombuffer(raw, dtype=">u8").reshape(-1, 4)[:, ::-1].astype(np.uint64)


def _chunk_keys(words: np.ndarray) -> np.ndarray:
    """``(n, 16)`` keys ``chunk << 16 | chunk value`` of each hash (chunk 0: the lowest 16 bits)."""
    shifts = np.arange(4, dtype=np.uint64) * np.uint64(CHUNK_BITS)
    values = (words[:, :, None] >> shifts) & np.uint64(_MASK)  # (n, 4 words, 4 chunks per word)
    return values.reshape(len(words), CHUNKS).astype(np.int64) | _CHUNK_TAGS


class HashIndex:
    """Hashes of many entries (an entry is an image, or a video's set of frames), searchable by distance.

    The hashes are a growable array of 4 x 64-bit words. The 16 chunk tables are one sorted array
    of keys ``chunk << 16 | value`` with the slot of each (compressed rows: every probe is a binary
    search, all 272 at once), plus a small table of recent additions merged in when it grows past
    an eighth of the index (amortised). Candidates are checked with one vectorised XOR and popcount.
    """

    def __init__(self, radius: int = PDQ_THRESHOLD) -> None:
        self.radius = radius
        self.probe = radius // CHUNKS  # 1 for PDQ's 31: probe each chunk's value and its 1-bit flips
        if self.probe > 1:
            raise ValueError("this index probes at most 1 bit per chunk: radius must be below 32")
        self._keys = np.zeros(0, dtype=np.int64)  # sorted
        self._slots = np.zeros(0, dtype=np.int64)  # the slot of each key
        self._recent: dict[int, list[int]] = {}
        self._recent_count = 0
        self._words = np.zeros((64, 4), dtype=np.uint64)  # grown by doubling; rows [0, _size) used
        self._entries = np.zeros(64, dtype=np.int64)
        self._size = 0
        self._dead: set[int] = set()

    def __len__(self) -> int:
        if not self._dead:
            return self._size
        return int(np.count_nonzero(~np.isin(self._entries[: self._size], list(self._dead))))

    def _grow(self, extra: int) -> None:
        needed = self._size + extra
        if needed <= len(self._entries):
            return
        capacity = max(needed, 2 * len(self._entries))
        words = np.zeros((capacity, 4), dtype=np.uint64)
        entries = np.zeros(capacity, dtype=np.int64)
        words[: self._size], entries[: self._size] = self._words[: self._size], self._entries[: self._size]
        self._words, self._entries = words, entries

    def add(self, entry: int, hashes: Iterable[str]) -> None:
        """Index every hash of ``entry`` (an int id chosen by the caller)."""
        self.add_many([(entry, list(hashes))])

    def add_many(self, items: Sequence[tuple[int, Sequence[str]]]) -> None:
        """Index many entries at once (much faster than one by one for a whole list)."""
        values = [h for _, hashes in items for h in hashes]
        if not values:
            return
        words = parse_hashes(values)
        for entry, _ in items:
            self._dead.discard(entry)
        first, count = self._size, len(values)
        self._grow(count)
        self._words[first : first + count] = words
        self._entries[first : first + count] = [e for e, hashes in items for _ in hashes]
        self._size += count
        keys = _chunk_keys(words)
        slots = np.repeat(np.arange(first, first + count, dtype=np.int64), CHUNKS)
        if self._recent_count + keys.size > max(4096, len(self._keys) // 8):
            self._merge(keys.ravel(), slots)
            return
        for key, slot in zip(keys.ravel().tolist(), slots.tolist(), strict=True):
            self._recent.setdefault(key, []).append(slot)
        self._recent_count += keys.size

    def _merge(self, keys: np.ndarray, slots: np.ndarray) -> None:
        recent_keys = [k for k, found in self._recent.items() for _ in found]
        recent_slots = [s for found in self._recent.values() for s in found]
        all_keys = np.concatenate([self._keys, np.array(recent_keys, dtype=np.int64), keys])
        all_slots = np.concatenate([self._slots, np.array(recent_slots, dtype=np.int64), slots])
        order = np.argsort(all_keys, kind="stable")
        self._keys, self._slots = all_keys[order], all_slots[order]
        self._recent, self._recent_count = {}, 0

    def remove(self, entry: int) -> None:
        """Forget ``entry`` (its slots are skipped from now on)."""
        self._dead.add(entry)

    def _candidates(self, words: np.ndarray) -> np.ndarray:
        flips = _FLIPS if self.probe else _FLIPS[:1]
        probes = (_chunk_keys(words[None, :])[0][:, None] ^ flips).ravel()  # flips stay inside a chunk
        low = np.searchsorted(self._keys, probes, side="left")
        lengths = np.searchsorted(self._keys, probes, side="right") - low
        total = int(lengths.sum())
        found = [self._slots[np.repeat(low - np.cumsum(lengths) + lengths, lengths) + np.arange(total)]]
        if self._recent:
            found += [np.array(self._recent[p], dtype=np.int64) for p in probes.tolist() if p in self._recent]
        return np.unique(np.concatenate(found))

    def search(self, value: str) -> dict[int, int]:
        """``{entry: smallest distance}`` of every entry with a hash within the radius of ``value``."""
        words = parse_hashes([value])[0]
        slots = self._candidates(words)
        if len(slots) == 0:
            return {}
        distances = np.bitwise_count(self._words[slots] ^ words).sum(axis=1)
        close = distances <= self.radius
        best: dict[int, int] = {}
        for entry, distance in zip(
            self._entries[slots[close]].tolist(), distances[close].tolist(), strict=True
        ):
            if entry not in self._dead and distance < best.get(entry, self.radius + 1):
                best[entry] = int(distance)
        return best


@dataclass(frozen=True)
class Hit:
    """An indexed entry that matches a medium: the closest frame's distance and the share of frames."""

    entry: int
    distance: int
    share: float


def all_hits(index: HashIndex, hashes: Sequence[str], kind: str, kind_of: Mapping[int, str]) -> list[Hit]:
    """Every entry of the same ``kind`` matching these usable hashes (see the module docstring)."""
    if not hashes:
        return []
    matched: dict[int, int] = {}
    closest: dict[int, int] = {}
    for value in hashes:
        for entry, distance in index.search(value).items():
            if kind_of.get(entry) != kind:
                continue
            matched[entry] = matched.get(entry, 0) + 1
            closest[entry] = min(distance, closest.get(entry, distance))
    found = [Hit(entry, closest[entry], count / len(hashes)) for entry, count in matched.items()]
    return [h for h in found if kind == "image" or h.share >= VIDEO_MATCH_SHARE]


def match_hashes(
    index: HashIndex,
    hashes: Sequence[str],
    kind: str,
    kind_of: Mapping[int, str],
    newer: Mapping[int, float] | None = None,
) -> Hit | None:
    """The best matching entry: highest share of frames, then closest, then newest (``newer``)."""
    hits = all_hits(index, hashes, kind, kind_of)
    if not hits:
        return None
    order = newer or {}
    return max(
        hits, key=lambda h: (h.share if kind == "video" else 1.0, -h.distance, order.get(h.entry, 0.0))
    )
