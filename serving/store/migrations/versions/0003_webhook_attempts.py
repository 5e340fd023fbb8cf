"""Webhook attempts are counted in the store, so a delivery resumed after a restart keeps its count.

Jobs get ``callback_attempts`` and outbox events ``attempts``: how many times the callback or
event was POSTed. Before, a delivery pending at shutdown started again from attempt 1, and a
receiver could be called more than ``serve.webhook_max_attempts`` times in all.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("callback_attempts", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("attempts")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("callback_attempts")
