"""The service's :class:`~detector.provenance.pdq.KnownMedia`: every hash list of the store, indexed.

The index (:class:`~serving.known.index.HashIndex`, multi-index hashing) lives in this process and
follows the store: before each lookup one read of the two ``revisions`` counters tells whether
anything changed; new items are added to the index, and a removal (a re-review, an erasure, an
import or a deleted list) rebuilds it. Replicas on one PostgreSQL database therefore see each other's
decisions at their next lookup.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import RowMapping, select

from detector.provenance.pdq import MediaHashes
from detector.report.schema import KnownMatch
from detector.settings import Settings
from serving.jobs.store import JobStore, check_store, open_store, store_path
from serving.known.index import HashIndex, match_hashes
from serving.store.schema import known_media, revisions


class _Entry(NamedTuple):
    list_name: str
    item: str
    verdict: Any  # a ReviewVerdict, checked when the row was written
    reviewed_at: float


class StoreKnownMedia:
    """Matches media against the store's hash lists (thread-safe; blocking: call off the event loop)."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.index = HashIndex()
        self._rows: dict[int, _Entry] = {}
        self._kinds: dict[int, str] = {}
        self._when: dict[int, float] = {}
        self._revision: tuple[int, int] | None = None  # (changes, deleting changes) loaded
        self._last = 0  # newest item id loaded

    def refresh(self) -> None:
        """Bring the index up to date with the store (one read of two counters when nothing changed)."""
        c = known_media.c
        with self._lock:
            counters = {r["name"]: int(r["value"]) for r in self.store.query(select(revisions))}
            revision = (counters.get("known_media", 0), counters.get("known_media_deleted", 0))
            if revision == self._revision:
                return
            if self._revision is not None and revision[1] != self._revision[1]:
                self._reset()  # items were removed or replaced: rebuild
            fresh = self.store.query(select(known_media).where(c.id > self._last).order_by(c.id))
            self._load(fresh)
            self._revision = revision

    def _load(self, rows: list[RowMapping]) -> None:
        batch: list[tuple[int, list[str]]] = []
        for item in rows:
            ident = int(item["id"])
            batch.append((ident, str(item["hashes"]).split()))
            self._kinds[ident] = str(item["kind"])
            self._when[ident] = float(item["reviewed_at"])
            self._rows[ident] = _Entry(
                str(item["list_name"]), str(item["item"]), item["verdict"], float(item["reviewed_at"])
            )
            self._last = max(self._last, ident)
        self.index.add_many(batch)

    def match(self, hashes: MediaHashes) -> KnownMatch | None:
        """The closest reviewed near-duplicate of this medium in any list, or None."""
        usable = hashes.usable()
        if not usable:
            return None
        self.refresh()
        with self._lock:
            hit = match_hashes(self.index, usable, hashes.kind, self._kinds, self._when)
            if hit is None:
                return None
            row = self._rows[hit.entry]
        return KnownMatch(
            verdict=row.verdict,
            reviewed_at=datetime.fromtimestamp(row.reviewed_at, UTC),
            distance=hit.distance,
            matched_share=round(hit.share, 4),
            list_name=row.list_name,
            item=row.item,
        )

    def __len__(self) -> int:
        return len(self._rows)


def still_current(known: StoreKnownMedia | None, report: dict[str, object]) -> bool:
    """Whether a cached report's ``known_match`` is what the hash lists say now (else analyse again)."""
    perceptual = report.get("perceptual_hash")
    media = report.get("media")
    if known is None or not isinstance(perceptual, dict) or not isinstance(media, dict):
        return True
    kind: Literal["image", "video"] = "video" if media.get("kind") == "video" else "image"
    now = known.match(MediaHashes(kind, tuple(perceptual["hashes"]), tuple(perceptual["qualities"])))
    before = report.get("known_match")
    if now is None or not isinstance(before, dict):
        return now is None and before is None
    fresh = now.model_dump(mode="json")
    return all(fresh.get(k) == before.get(k) for k in ("verdict", "list_name", "item", "distance"))


def service_known_media(settings: Settings) -> StoreKnownMedia | None:
    """The service's hash lists, when its store exists (``database_url``, or SQLite in the data
    folder): what a scan and ``trueframe analyze`` match media against, as the service does."""
    if not settings.database_url and not store_path(settings).is_file():
        return None
    return StoreKnownMedia(open_store(settings))


def check_hash_lists(settings: Settings) -> None:
    """Fail before any work when the store whose hash lists media is matched against is configured
    but cannot be reached (``store_unavailable``): a scan's actors would each die opening it."""
    if settings.database_url or store_path(settings).is_file():
        check_store(settings)
