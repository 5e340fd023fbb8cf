"""Hash-list items whose decision time is not a time are removed.

Until 2026-12-03 an import stored any number as ``reviewed_at`` (``1e20``, ``inf``, ``-1e15``; on
PostgreSQL ``nan`` too), and every later analysis matching such an item answered 500, as did the
list's export: the time could not be made a date. Imports now refuse them (a time between 1970 and
now, a day of clock slack); the rows stored before cannot be repaired, since their real decision
time is unknown, so they are deleted, and the list's owner imports them again with a time. On
PostgreSQL NaN sorts above every number, so the upper bound catches it; SQLite never stored one.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SLACK_S = 86_400.0


def upgrade() -> None:
    known = sa.table("known_media", sa.column("reviewed_at", sa.Float))
    when = known.c.reviewed_at
    op.execute(sa.delete(known).where(sa.or_(when.is_(None), when < 0.0, when > time.time() + SLACK_S)))
    revisions = sa.table("revisions", sa.column("name", sa.String), sa.column("value", sa.Integer))
    changed = revisions.c.name.in_(["known_media", "known_media_deleted"])
    op.execute(sa.update(revisions).where(changed).values(value=revisions.c.value + 1))  # indexes rebuilt


def downgrade() -> None:
    """Nothing to restore: the removed rows held no usable decision."""
