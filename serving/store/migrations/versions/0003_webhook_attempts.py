"""Webhook attempts are counted in the store, so a delivery resumed after a restart keeps its count;
reviews are indexed by the sha256 of the bytes they judged.

Jobs get ``callback_attempts`` and outbox events ``attempts``: how many times the callback or
event was POSTed. Before, a delivery pending at shutdown started again from attempt 1, and a
receiver could be called more than ``serve.webhook_max_attempts`` times in all. The flagged review
queue leaves out every job whose bytes a review judged, which ``reviews_sha256`` serves.

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
    op.create_index("reviews_sha256", "reviews", ["sha256"])


def downgrade() -> None:
    op.drop_index("reviews_sha256", "reviews")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("attempts")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("callback_attempts")
