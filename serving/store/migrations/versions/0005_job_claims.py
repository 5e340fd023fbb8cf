"""Jobs count their claims, so only the worker holding a job's latest claim records its outcome.

On a shared database a replica whose store calls failed for a while misses its heartbeats, and
another replica's sweep requeues its job and runs it again. Both finished it; the second outcome
was dropped, but the first worker to finish answered the lost-commit check ("was my outcome
recorded?") with the other's outcome and sent the job's webhook a second time. ``claims`` is raised
by every claim; an outcome, a progress update and that check name the claim they belong to.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("claims", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("claims")
