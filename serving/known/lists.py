"""Hash lists in the store: the service's own ``reviewed`` list and imported ones; CSV in and out.

A list holds only PDQ hashes, verdicts, when they were decided and an item reference, never media.
The ``reviewed`` list is this service's: each reviewed job contributes one item (its latest human
decision; the item reference is the review id). Other lists are imported from CSV so teams can
share decisions without sharing media. The CSV has one row per hash (a video's frames share their
item): ``item,kind,verdict,reviewed_at,hash`` with ``reviewed_at`` in ISO 8601 (UTC) and ``hash``
64 hex digits.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from sqlalchemy import Connection, delete, func, insert, select, update

from detector.errors import InvalidRequest
from detector.provenance.pdq import MIN_QUALITY
from detector.report.schema import ReviewVerdict
from serving.http.errors import ListNotFound, echoed
from serving.jobs.store import JobStore
from serving.store.schema import hash_lists, known_media, revisions

REVIEWED = "reviewed"
CSV_COLUMNS = ("item", "kind", "verdict", "reviewed_at", "hash")
LIST_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
HEX = re.compile(r"[0-9a-f]{64}")
VERDICTS = frozenset(get_args(ReviewVerdict))
MAX_IMPORT_ROWS = 2_000_000


@dataclass(frozen=True)
class ListSummary:
    name: str
    source: str
    description: str | None
    items: int
    hashes: int
    created_at: float


def check_name(name: str) -> str:
    if not LIST_NAME.fullmatch(name):
        raise InvalidRequest(
            "a list name is 1-64 of a-z, 0-9, '_', '.', '-' (starting with a letter or digit)"
        )
    return name


def bump(db: Connection, deleted: bool = False) -> None:
    """Record a change of the hash lists (call first in the writing transaction: see ``revisions``)."""
    names = ["known_media", "known_media_deleted"] if deleted else ["known_media"]
    for name in names:  # one row at a time, always in this order: two writers never lock them crosswise
        db.execute(update(revisions).where(revisions.c.name == name).values(value=revisions.c.value + 1))


def ensure_list(db: Connection, name: str, source: str, description: str | None = None) -> None:
    """Create the list row when missing (inside the caller's transaction)."""
    if db.execute(select(hash_lists.c.name).where(hash_lists.c.name == name)).first() is None:
        db.execute(
            insert(hash_lists).values(
                name=name, source=source, description=description, created_at=time.time()
            )
        )


def usable_hashes(perceptual: dict[str, Any] | None) -> list[str]:
    """The hashes of a report's ``perceptual_hash`` that are good enough to match (PDQ quality >= 50)."""
    if not perceptual:
        return []
    pairs = zip(perceptual.get("hashes") or [], perceptual.get("qualities") or [], strict=False)
    return [h for h, q in pairs if q >= MIN_QUALITY]


def put_reviewed(
    db: Connection,
    *,
    job_id: str,
    owner: str,
    kind: str,
    hashes: list[str],
    verdict: str,
    item: str,
    at: float,
) -> None:
    """Make ``job_id``'s entry in the ``reviewed`` list carry its latest decision (inside a transaction)."""
    bump(db)
    ensure_list(db, REVIEWED, "reviews", "decisions recorded by this service's reviewers")
    gone = db.execute(
        delete(known_media).where(known_media.c.list_name == REVIEWED, known_media.c.job_id == job_id)
    )
    if gone.rowcount:
        bump(db, deleted=True)
    if hashes:
        db.execute(
            insert(known_media).values(
                list_name=REVIEWED,
                item=item,
                kind=kind,
                verdict=verdict,
                reviewed_at=at,
                hashes=" ".join(hashes),
                job_id=job_id,
                owner=owner,
                added_at=time.time(),
            )
        )


def summaries(store: JobStore) -> list[ListSummary]:
    c = known_media.c
    counts = {
        r["list_name"]: r
        for r in store.query(
            select(
                c.list_name, func.count().label("items"), func.sum(func.length(c.hashes)).label("chars")
            ).group_by(c.list_name)
        )
    }
    out = []
    for row in store.query(select(hash_lists).order_by(hash_lists.c.name)):
        count = counts.get(row["name"])
        items = int(count["items"]) if count else 0
        hashes = (int(count["chars"]) + items) // 65 if count else 0  # 64 hex digits + a separator each
        out.append(
            ListSummary(row["name"], row["source"], row["description"], items, hashes, row["created_at"])
        )
    return out


def _exists(store: JobStore, name: str) -> None:
    """``list_not_found`` unless the list exists; a name no list can have (a NUL, 10,000 characters)
    is refused before the store is asked (PostgreSQL answered a NUL with 500)."""
    named = select(hash_lists.c.name).where(hash_lists.c.name == name)
    if not LIST_NAME.fullmatch(name) or not store.query(named):
        raise ListNotFound(f"no hash list {echoed(name)}")


def export_csv(store: JobStore, name: str) -> str:
    """The list as CSV, one row per hash (no job ids, owners or media: only what may be shared)."""
    _exists(store, name)
    c = known_media.c
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in store.query(
        select(c.item, c.kind, c.verdict, c.reviewed_at, c.hashes).where(c.list_name == name).order_by(c.id)
    ):
        when = datetime.fromtimestamp(row["reviewed_at"], UTC).isoformat(timespec="seconds")
        for value in row["hashes"].split():
            writer.writerow((row["item"], row["kind"], row["verdict"], when, value))
    return out.getvalue()


FUTURE_SLACK_S = 86_400.0
"""How far in the future a ``reviewed_at`` may lie (clocks differ): a decision is not made later."""


def _when(value: str | None, line: int) -> float:
    """Unix seconds of a ``reviewed_at`` cell, from 1970 to now (plus a day of clock slack)."""
    text = (value or "").strip()
    if not text:
        raise InvalidRequest(f"line {line}: reviewed_at is missing")
    try:
        when = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            message = f"line {line}: reviewed_at {text!r} is not ISO 8601 nor Unix seconds"
            raise InvalidRequest(message) from exc
        when = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    if not 0.0 <= when <= time.time() + FUTURE_SLACK_S:  # also NaN and infinities
        raise InvalidRequest(f"line {line}: reviewed_at {text!r} is not a time between 1970 and now")
    return when


def parse_csv(text: str) -> dict[str, dict[str, Any]]:
    """Items of a hash-list CSV by item reference: kind, verdict, reviewed_at and hashes; typed errors.

    A row without an ``item`` is its own item, named after its hash, so unnamed rows of two imports
    never replace each other (they were ``line-N`` until 2026-12-03: the second import's line 2
    replaced the first's). A hash repeated within an item is kept once.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = set(CSV_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise InvalidRequest(f"the CSV needs the columns {', '.join(CSV_COLUMNS)}; missing {sorted(missing)}")
    items: dict[str, dict[str, Any]] = {}
    for line, row in enumerate(reader, start=2):
        if line > MAX_IMPORT_ROWS + 1:  # line 1 is the header
            raise InvalidRequest(f"at most {MAX_IMPORT_ROWS} rows per import")
        value, kind, verdict = (row["hash"] or "").strip().lower(), row["kind"], row["verdict"]
        if not HEX.fullmatch(value) or kind not in ("image", "video") or verdict not in VERDICTS:
            raise InvalidRequest(
                f"line {line}: need a 64-hex-digit hash, kind image|video, verdict one of {sorted(VERDICTS)}"
            )
        item = (row["item"] or "").strip()[:128] or f"hash-{value}"
        entry = items.setdefault(
            item,
            {"kind": kind, "verdict": verdict, "reviewed_at": _when(row["reviewed_at"], line), "hashes": {}},
        )
        if (entry["kind"], entry["verdict"]) != (kind, verdict):
            raise InvalidRequest(f"line {line}: item {item!r} has rows with different kinds or verdicts")
        entry["hashes"][value] = None  # ordered, each hash once
    return {item: {**e, "hashes": list(e["hashes"])} for item, e in items.items()}


def import_csv(store: JobStore, name: str, text: str, replace: bool = False) -> tuple[int, int]:
    """Add (or with ``replace``, swap in) the items of a CSV; returns (items, hashes). Not ``reviewed``."""
    check_name(name)
    if name == REVIEWED:
        raise InvalidRequest(f"{REVIEWED!r} is this service's own list: import into another name")
    items = parse_csv(text)
    now = time.time()
    rows = [
        {
            "list_name": name, "item": item, "kind": e["kind"], "verdict": e["verdict"],
            "reviewed_at": e["reviewed_at"], "hashes": " ".join(e["hashes"]), "job_id": None,
            "owner": None, "added_at": now,
        }
        for item, e in items.items()
    ]  # fmt: skip
    with store.transaction() as db:
        bump(db, deleted=True)  # an import may replace items: the index is rebuilt
        ensure_list(db, name, "import", None)
        if replace:
            db.execute(delete(known_media).where(known_media.c.list_name == name))
        else:  # an item imported again replaces its earlier rows
            _delete_items(db, name, list(items))
        for start in range(0, len(rows), 1000):
            db.execute(insert(known_media), rows[start : start + 1000])
    return len(rows), sum(len(e["hashes"]) for e in items.values())


def _delete_items(db: Connection, name: str, items: Iterable[str]) -> None:
    chosen = list(items)
    for start in range(0, len(chosen), 500):
        part = chosen[start : start + 500]
        db.execute(delete(known_media).where(known_media.c.list_name == name, known_media.c.item.in_(part)))


def delete_list(store: JobStore, name: str) -> None:
    """Remove an imported list and its hashes (the ``reviewed`` list follows the reviews)."""
    _exists(store, name)
    if name == REVIEWED:
        raise InvalidRequest(f"{REVIEWED!r} follows the reviews; erase a key's data to remove its items")
    with store.transaction() as db:
        bump(db, deleted=True)
        db.execute(delete(known_media).where(known_media.c.list_name == name))
        db.execute(delete(hash_lists).where(hash_lists.c.name == name))
