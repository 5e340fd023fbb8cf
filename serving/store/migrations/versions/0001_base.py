"""The first schema: jobs, API keys, web sessions and the per-owner result cache.

Stores made before migrations existed (hand-written SQLite, no ``alembic_version``) already hold
some of these tables: those are kept as they are (keys made before roles get the ``role`` column,
every existing key a submitter) and only the missing ones are created.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("partial", sa.Text),
        sa.Column("report", sa.Text),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("media_path", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("callback_url", sa.Text),
        sa.Column("callback_state", sa.String(16)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float),
    )
    op.create_index("jobs_status", "jobs", ["status", "created_at"])


def _api_keys() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("webhook_secret", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
        sa.Column("role", sa.String(16), nullable=False, server_default="submitter"),
    )


def _sessions() -> None:
    op.create_table(
        "sessions",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def _results() -> None:
    op.create_table(
        "results",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("result_key", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(128), primary_key=True),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    for name, create in (("jobs", _jobs), ("api_keys", _api_keys), ("sessions", _sessions)):
        if name not in existing:
            create()
    if "api_keys" in existing and "role" not in {c["name"] for c in inspector.get_columns("api_keys")}:
        op.add_column(
            "api_keys", sa.Column("role", sa.String(16), nullable=False, server_default="submitter")
        )
    if "cache" in existing:  # the result cache of the first releases (not per owner): dropped
        op.drop_table("cache")
    if "results" not in existing:
        _results()


def downgrade() -> None:
    for name in ("results", "sessions", "api_keys", "jobs"):
        op.drop_table(name)
