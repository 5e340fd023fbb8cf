"""Web-form sessions: an ``HttpOnly; SameSite=Strict`` cookie holding a random token.

The store keeps the token's sha256 and the owner the session acts for: ``session:<id>`` while the
service runs without keys, or the key the form was given once through ``POST /v1/session``.
"""

from __future__ import annotations

import secrets
import time

from sqlalchemy import delete, insert, select

from serving.auth.keys import digest
from serving.jobs.store import JobStore
from serving.store.schema import sessions


def create_session(store: JobStore, owner: str | None, ttl_s: float) -> tuple[str, str]:
    """A session token for the cookie, acting for ``owner`` (a fresh anonymous owner when None)."""
    token = secrets.token_urlsafe(32)
    owner = owner or f"session:{secrets.token_hex(8)}"
    with store.transaction() as db:
        db.execute(insert(sessions).values(hash=digest(token), owner=owner, expires_at=time.time() + ttl_s))
    return token, owner


def session_owner(store: JobStore, token: str) -> str | None:
    """The owner an unexpired session acts for; None otherwise."""
    c = sessions.c
    rows = store.query(select(c.owner).where(c.hash == digest(token), c.expires_at > time.time()))
    return rows[0]["owner"] if rows else None


def end_session(store: JobStore, token: str) -> None:
    """Forget a session (sign-out)."""
    with store.transaction() as db:
        db.execute(delete(sessions).where(sessions.c.hash == digest(token)))
