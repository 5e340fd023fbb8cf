"""What a scan decides from the fingerprints, before any analysis: pure functions, no Ray, no I/O.

:func:`plan_scan` sorts every fingerprinted item into one of four cases:

* **skip**: a row for ``(path, sha256, model_versions)`` is already in RESULTS, unless it records a
  failure that was not the file's (:data:`RETRIED`): those are analysed again;
* **error row now**: the file could not be read or is not media (its typed code and message);
* **duplicate now**: a file with the same content was analysed by an earlier scan under the same
  model versions; its result is copied with ``duplicate_of`` naming the analysed path
  (rows of :data:`RETRIED` codes are never copied: a rescan tries them again);
* **analyse**: the first item of each new content; later items of the same content in this run
  share its result (:func:`shared_rows`), so each content is analysed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from serving.scan.output import Row, make_row, row_key
from serving.scan.source import ScanItem

CONTENT_COLUMNS = ("sha256", "size_bytes", "kind", "format")
RETRIED = frozenset({"internal_error", "store_unavailable"})
"""Error codes that say nothing about the file (a bug, the hash lists' database down): a rerun
analyses such rows again instead of skipping them or copying them to duplicates."""


@dataclass
class Plan:
    """What the fingerprint pass decided: rows to write now, contents to analyse and who shares them."""

    ready: list[Row] = field(default_factory=list)
    analyse: dict[str, int] = field(default_factory=dict)  # sha256 -> id of the item analysed
    sharing: dict[str, list[int]] = field(default_factory=dict)  # sha256 -> ids reported with it
    content_of: dict[int, Row] = field(default_factory=dict)  # analysed id -> sha256, size, kind, format
    skipped: int = 0


def known_results(existing: Iterable[Row]) -> dict[tuple[str, str | None], Row]:
    """Earlier analysed rows by ``(sha256, model_versions)``: copies and internal errors left out."""
    return {
        (r["sha256"], r.get("model_versions")): r
        for r in existing
        if r.get("sha256") and not r.get("duplicate_of") and r.get("error_code") not in RETRIED
    }


def error_result(fingerprint: Mapping[str, Any]) -> Row:
    """The result columns of an item whose fingerprint failed (``error`` is ``code\\tmessage``)."""
    code, message = str(fingerprint["error"]).split("\t", 1)
    return {
        "sha256": fingerprint["sha256"],
        "size_bytes": fingerprint["size_bytes"],
        "error_code": code,
        "error_message": message,
    }


def plan_scan(
    items: Sequence[ScanItem],
    prints: Iterable[Mapping[str, Any]],
    existing: Iterable[Row],
    versions: str,
) -> Plan:
    """Decide per fingerprinted item (``id`` indexes ``items``): skip, write now, or analyse.

    ``prints`` are rows ``{id, sha256, size_bytes, kind, format, error}``; ``existing`` the rows
    already in RESULTS; ``versions`` the model versions this scan would record.
    """
    rows = list(existing)
    done = {row_key(r) for r in rows if r.get("error_code") not in RETRIED}
    known = known_results(rows)
    plan = Plan()
    for fp in prints:
        ident = int(fp["id"])
        item, sha = items[ident], fp["sha256"]
        if (item.path, sha or "", versions) in done:
            plan.skipped += 1
        elif fp["error"] is not None:
            plan.ready.append(make_row(item.path, item.extra, error_result(fp), versions))
        elif (sha, versions) in known:
            prior = known[(sha, versions)]
            result = {**prior, "duplicate_of": prior["path"], "scanned_at": None}
            plan.ready.append(make_row(item.path, item.extra, result, versions))
        elif sha in plan.analyse:
            plan.sharing[sha].append(ident)
        else:
            plan.analyse[sha] = ident
            plan.content_of[ident] = {k: fp[k] for k in CONTENT_COLUMNS}
            plan.sharing[sha] = [ident]
    return plan


def shared_rows(items: Sequence[ScanItem], plan: Plan, ident: int, result: Row, versions: str) -> list[Row]:
    """The rows of every item sharing the content analysed as item ``ident`` (``duplicate_of`` set
    on all but that one). A failure before the bytes were hashed again keeps the planned content key."""
    first = items[ident]
    base = plan.content_of[ident]
    row = {**base, **{k: v for k, v in result.items() if v is not None}}
    rows = []
    for other in plan.sharing[base["sha256"]]:
        item = items[other]
        dup = None if other == ident else first.path
        rows.append(make_row(item.path, item.extra, {**row, "duplicate_of": dup}, versions))
    return rows


__all__ = ["RETRIED", "Plan", "error_result", "known_results", "plan_scan", "shared_rows"]
