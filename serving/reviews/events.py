"""Review and appeal events for the job owner's webhook, kept in an outbox until delivered.

Where: the job's ``callback_url`` when it was submitted with one, else the ``webhook_url`` of the
owner's key (``trueframe keys create --webhook-url``); no event is kept when neither exists. Signed
like job callbacks, with the owner key's webhook secret, and sent with ``X-Trueframe-Event``. Events:
``review.recorded``, ``appeal.opened``, ``appeal.in_review``, ``appeal.upheld``, ``appeal.overturned``.
Undelivered events are resumed when the service starts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from serving.auth.keys import key_webhook_url
from serving.jobs.store import Job, JobStore
from serving.store.schema import events


@dataclass(frozen=True)
class Event:
    id: int
    job_id: str
    owner: str
    event: str
    url: str
    body: str
    attempts: int = 0


def add_event(store: JobStore, job: Job, event: str, payload: dict[str, Any]) -> Event | None:
    """Keep one event for the job owner's webhook; None when the owner has no webhook."""
    url = job.callback_url or key_webhook_url(store, job.owner)
    if url is None:
        return None
    now = time.time()
    body = json.dumps({"event": event, "job_id": job.id, "at": now, **payload}, sort_keys=True)
    values = {"job_id": job.id, "owner": job.owner, "event": event, "url": url, "body": body}
    with store.transaction() as db:
        ident = db.execute(
            insert(events).values(**values, state="pending", created_at=now).returning(events.c.id)
        ).scalar_one()
    return Event(int(ident), job.id, job.owner, event, url, body)


def pending_events(store: JobStore) -> list[Event]:
    c = events.c
    rows = store.query(
        select(c.id, c.job_id, c.owner, c.event, c.url, c.body, c.attempts)
        .where(c.state == "pending")
        .order_by(c.id)
    )
    return [Event(**dict(r)) for r in rows]


def mark_event(store: JobStore, event_id: int, state: str) -> None:
    with store.transaction() as db:
        db.execute(update(events).where(events.c.id == event_id).values(state=state))


def count_event_attempt(store: JobStore, event_id: int, attempt: int) -> None:
    """Record that the event is being POSTed for the ``attempt``-th time."""
    with store.transaction() as db:
        db.execute(update(events).where(events.c.id == event_id).values(attempts=attempt))


def event_states(store: JobStore, job_id: str) -> list[tuple[str, str]]:
    """``(event, state)`` of a job's events, oldest first (for tests and operators)."""
    c = events.c
    return [
        (r["event"], r["state"])
        for r in store.query(select(c.event, c.state).where(c.job_id == job_id).order_by(c.id))
    ]
