"""Erasure: everything the service keeps about one key's submissions, removed at once.

``DELETE /v1/keys/{id}/data`` (admin) calls :func:`erase_owner`: the key's jobs with their reports
and any media still on disk, its cached reports, its web sessions, its appeals, the reviews of its
jobs, the hashes its uploads contributed to the ``reviewed`` list and its pending webhook events.
Decisions the key made as a reviewer on other keys' jobs stay (they belong to those jobs), with the
reviewer recorded as ``erased``. The key itself is not revoked (``trueframe keys revoke`` does that).
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from serving.jobs.store import JobStore
from serving.known.lists import bump
from serving.store import schema as t

ERASED = "erased"


def erase_owner(store: JobStore, owner: str) -> dict[str, int]:
    """Delete ``owner``'s data (see the module docstring); counts per kind of record."""
    job_ids = [r["id"] for r in store.query(select(t.jobs.c.id).where(t.jobs.c.owner == owner))]
    counts: dict[str, int] = {}
    with store.transaction() as db:
        bump(db, deleted=True)
        for name, stmt in (
            ("jobs", delete(t.jobs).where(t.jobs.c.owner == owner)),
            ("cached_reports", delete(t.results).where(t.results.c.owner == owner)),
            ("sessions", delete(t.sessions).where(t.sessions.c.owner == owner)),
            ("appeals", delete(t.appeals).where(t.appeals.c.owner == owner)),
            ("reviews", delete(t.reviews).where(t.reviews.c.job_owner == owner)),
            ("hash_list_items", delete(t.known_media).where(t.known_media.c.owner == owner)),
            ("events", delete(t.events).where(t.events.c.owner == owner)),
        ):
            counts[name] = int(db.execute(stmt).rowcount)
        db.execute(update(t.reviews).where(t.reviews.c.reviewer == owner).values(reviewer=ERASED))
        db.execute(update(t.appeals).where(t.appeals.c.assigned_to == owner).values(assigned_to=ERASED))
    store.delete_media(job_ids)
    return counts
