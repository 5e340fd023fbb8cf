"""API keys, kept in the job store and only ever stored hashed (sessions: :mod:`.sessions`).

A key reads ``tfk_<id>_<secret>``: ``id`` (8 hex chars) names it in ``trueframe keys list`` and is
the owner recorded on its jobs; ``secret`` is 256 random bits. The store keeps sha256 of the whole
key, compared in constant time. Each key also gets a webhook signing secret (``whsec_...``), shown
once at creation beside the key and kept in the store (it must be readable to sign).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import insert, select, update

from detector.errors import InvalidRequest
from serving.jobs.store import JobStore
from serving.store.schema import api_keys

KEY_PREFIX = "tfk_"


Role = Literal["submitter", "reviewer", "admin"]
ROLES: tuple[Role, ...] = ("submitter", "reviewer", "admin")


@dataclass(frozen=True)
class ApiKey:
    """A key as ``keys list`` shows it (never the secret)."""

    id: str
    name: str | None
    created_at: float
    revoked_at: float | None
    role: Role = "submitter"
    webhook_url: str | None = None


@dataclass(frozen=True)
class NewKey:
    """What ``keys create`` prints once: the key itself and its webhook signing secret."""

    key: ApiKey
    token: str
    webhook_secret: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``owner`` is recorded on jobs; ``webhook_secret`` signs their callbacks."""

    owner: str
    webhook_secret: str | None
    via: str  # "key", "session" or "anonymous"
    role: Role = "submitter"


def digest(token: str) -> str:
    """sha256 hex of a key or session token: the only form the store keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(
    store: JobStore, name: str | None = None, role: Role = "submitter", webhook_url: str | None = None
) -> NewKey:
    """A new key with ``role``; its token and webhook secret exist in plain text only in the result.

    ``webhook_url`` (optional) receives the review and appeal events of this key's jobs that were
    made without a ``callback_url``.
    """
    if role not in ROLES:
        raise InvalidRequest(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    key_id = secrets.token_hex(4)
    token = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    webhook_secret = "whsec_" + secrets.token_urlsafe(32)
    now = time.time()
    with store.transaction() as db:
        if db.execute(select(api_keys.c.id).where(api_keys.c.id == key_id)).first():
            raise InvalidRequest("key id collision; run the command again")
        db.execute(
            insert(api_keys).values(
                id=key_id,
                name=name,
                hash=digest(token),
                webhook_secret=webhook_secret,
                created_at=now,
                role=role,
                webhook_url=webhook_url,
            )
        )
    return NewKey(ApiKey(key_id, name, now, None, role, webhook_url), token, webhook_secret)


def list_keys(store: JobStore) -> list[ApiKey]:
    c = api_keys.c
    rows = store.query(
        select(c.id, c.name, c.created_at, c.revoked_at, c.role, c.webhook_url).order_by(c.created_at)
    )
    return [
        ApiKey(r["id"], r["name"], r["created_at"], r["revoked_at"], r["role"], r["webhook_url"])
        for r in rows
    ]


def get_key(store: JobStore, key_id: str) -> ApiKey | None:
    """One key by id (revoked or not); None when unknown."""
    return next((k for k in list_keys(store) if k.id == key_id), None)


def revoke_key(store: JobStore, key_id: str) -> bool:
    """Revoke a key at once (its jobs stay readable by nobody); False when unknown or already revoked."""
    with store.transaction() as db:
        cur = db.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=time.time())
        )
    return bool(cur.rowcount == 1)


def any_key_ever(store: JobStore) -> bool:
    """Whether a key was ever created: from then on the service stays closed unless configured open."""
    return bool(store.query(select(api_keys.c.id).limit(1)))


def active_role(store: JobStore, owner: str) -> Role | None:
    """The role of the unrevoked key behind ``owner`` (``key:<id>``); None when revoked or not a key."""
    if not owner.startswith("key:"):
        return None
    rows = store.query(
        select(api_keys.c.role).where(api_keys.c.id == owner[4:], api_keys.c.revoked_at.is_(None))
    )
    return rows[0]["role"] if rows else None


def authenticate_key(store: JobStore, token: str) -> Principal | None:
    """The principal of a valid, unrevoked key; None otherwise."""
    if not token.startswith(KEY_PREFIX) or token.count("_") < 2:
        return None
    key_id = token[len(KEY_PREFIX) :].split("_", 1)[0]
    c = api_keys.c
    rows = store.query(select(c.hash, c.webhook_secret, c.role).where(c.id == key_id, c.revoked_at.is_(None)))
    if not rows or not hmac.compare_digest(rows[0]["hash"], digest(token)):
        return None
    return Principal(f"key:{key_id}", rows[0]["webhook_secret"], "key", rows[0]["role"])


def key_webhook_secret(store: JobStore, owner: str) -> str | None:
    """The webhook secret of the key behind ``owner`` (``key:<id>``), for session-made jobs too."""
    if not owner.startswith("key:"):
        return None
    rows = store.query(select(api_keys.c.webhook_secret).where(api_keys.c.id == owner[4:]))
    return rows[0]["webhook_secret"] if rows else None


def key_webhook_url(store: JobStore, owner: str) -> str | None:
    """The webhook URL registered for the key behind ``owner``, if any (review and appeal events)."""
    if not owner.startswith("key:"):
        return None
    rows = store.query(select(api_keys.c.webhook_url).where(api_keys.c.id == owner[4:]))
    return rows[0]["webhook_url"] if rows else None
