"""Trust and safety: human reviews, appeals, known-media hash lists, the webhook event outbox.

Jobs get the columns the review queue sorts and filters on (kind, verdict, score) and a
heartbeat a worker touches while it runs the job; keys get an optional webhook URL for review and
appeal events of jobs made without a callback.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _reviews() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("job_owner", sa.String(128), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("model_verdict", sa.String(32)),
        sa.Column("model_score", sa.Float),
        sa.Column("sha256", sa.String(64)),
        sa.Column("kind", sa.String(8)),
        sa.Column("appeal_id", sa.String(40)),
    )
    op.create_index("reviews_job", "reviews", ["job_id", "created_at"])
    op.create_index("reviews_owner", "reviews", ["job_owner"])


def _appeals() -> None:
    op.create_table(
        "appeals",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("statement", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("contested_verdict", sa.String(32)),
        sa.Column("assigned_to", sa.String(128)),
        sa.Column("review_id", sa.String(40)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("appeals_state", "appeals", ["state", "created_at"])
    op.create_index("appeals_job", "appeals", ["job_id"])
    op.create_index("appeals_owner", "appeals", ["owner"])


def _hash_lists() -> None:
    op.create_table(
        "hash_lists",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("description", sa.Text),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "known_media",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("list_name", sa.String(64), nullable=False),
        sa.Column("item", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("reviewed_at", sa.Float, nullable=False),
        sa.Column("hashes", sa.Text, nullable=False),
        sa.Column("job_id", sa.String(64)),
        sa.Column("owner", sa.String(128)),
        sa.Column("added_at", sa.Float, nullable=False),
    )
    op.create_index("known_media_list", "known_media", ["list_name", "item"])
    op.create_index("known_media_job", "known_media", ["job_id"])
    op.create_index("known_media_owner", "known_media", ["owner"])
    revisions = op.create_table(
        "revisions",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )
    op.bulk_insert(
        revisions, [{"name": "known_media", "value": 0}, {"name": "known_media_deleted", "value": 0}]
    )


def _events() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("events_state", "events", ["state"])
    op.create_index("events_owner", "events", ["owner"])


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("kind", sa.String(8)))
        batch.add_column(sa.Column("verdict", sa.String(32)))
        batch.add_column(sa.Column("score", sa.Float))
        batch.add_column(sa.Column("known_verdict", sa.String(16)))
        batch.add_column(sa.Column("heartbeat_at", sa.Float))
    op.create_index("jobs_owner", "jobs", ["owner"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("webhook_url", sa.Text))
    _reviews()
    _appeals()
    _hash_lists()
    _events()


def downgrade() -> None:
    for name in ("events", "revisions", "known_media", "hash_lists", "appeals", "reviews"):
        op.drop_table(name)
    op.drop_index("jobs_owner", "jobs")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("webhook_url")
    with op.batch_alter_table("jobs") as batch:
        for column in ("heartbeat_at", "known_verdict", "score", "verdict", "kind"):
            batch.drop_column(column)
