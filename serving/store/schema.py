"""Every table of the service, in one SQLAlchemy ``MetaData`` (the migrations create the same).

Times are Unix seconds (floats), JSON documents are text. Jobs, keys, sessions and the result cache
date from the first schema (migration 0001); reviews, appeals, known-media hash lists, the webhook
event outbox and the job columns the review queue sorts on come with migration 0002; the webhook
attempt counts of jobs and events, and the reviews' sha256 index, with 0003.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Float, nullable=False, server_default="0"),
    Column("partial", Text),
    Column("report", Text),
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("media_path", Text),
    Column("name", Text),
    Column("sha256", String(64), nullable=False),
    Column("options", Text, nullable=False),
    Column("callback_url", Text),
    Column("callback_state", String(16)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("kind", String(8)),  # 0002: what the review queue shows and sorts on
    Column("verdict", String(32)),
    Column("score", Float),
    Column("known_verdict", String(16)),  # 0002: a reviewed near-duplicate's verdict, if any
    Column("heartbeat_at", Float),  # 0002: a worker that runs the job touches it
    Column("callback_attempts", Integer, nullable=False, server_default="0"),  # 0003: POSTs made
    Column("claims", Integer, nullable=False, server_default="0"),  # 0005: times a worker took it
    Index("jobs_status", "status", "created_at"),
    Index("jobs_owner", "owner"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", Text),
    Column("hash", String(64), nullable=False),
    Column("webhook_secret", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("role", String(16), nullable=False, server_default="submitter"),
    Column("webhook_url", Text),  # 0002: where review and appeal events go when a job has no callback
)

sessions = Table(
    "sessions",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("expires_at", Float, nullable=False),
)

results = Table(
    "results",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("result_key", String(64), primary_key=True),
    Column("owner", String(128), primary_key=True),
    Column("report", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("job_id", String(64), nullable=False),
    Column("job_owner", String(128), nullable=False),
    Column("reviewer", String(128), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("notes", Text),
    Column("created_at", Float, nullable=False),
    Column("model_verdict", String(32)),
    Column("model_score", Float),
    Column("sha256", String(64)),
    Column("kind", String(8)),
    Column("appeal_id", String(40)),
    Index("reviews_job", "job_id", "created_at"),
    Index("reviews_owner", "job_owner"),
    Index("reviews_sha256", "sha256"),  # 0003: the flagged queue leaves out bytes already decided
)

PENDING_APPEALS = ("open", "in_review")
"""Appeal states still waiting for a decision (``serving.reviews.records``)."""

appeals = Table(
    "appeals",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("job_id", String(64), nullable=False),
    Column("owner", String(128), nullable=False),
    Column("statement", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("contested_verdict", String(32)),
    Column("assigned_to", String(128)),
    Column("review_id", String(40)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("appeals_state", "state", "created_at"),
    Index("appeals_job", "job_id"),
    Index("appeals_owner", "owner"),
)

hash_lists = Table(
    "hash_lists",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("description", Text),
    Column("source", String(16), nullable=False),  # "reviews" (this service's decisions) or "import"
    Column("created_at", Float, nullable=False),
)

known_media = Table(
    "known_media",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list_name", String(64), nullable=False),
    Column("item", String(128), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("reviewed_at", Float, nullable=False),
    Column("hashes", Text, nullable=False),  # 64 hex digits per image or video frame, space-separated
    Column("job_id", String(64)),  # the reviewed job (own list only; never exported)
    Column("owner", String(128)),  # whose upload the hashes come from (erasure); None when imported
    Column("added_at", Float, nullable=False),
    Index("known_media_list", "list_name", "item"),
    Index("known_media_job", "job_id"),
    Index("known_media_owner", "owner"),
)

revisions = Table(
    "revisions",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Integer, nullable=False),
)
"""Change counters: ``known_media`` (any change of the hash lists) and ``known_media_deleted``
(a change that removed items). A writer of ``known_media`` bumps the counter first, which also
serialises the writers so that item ids are committed in increasing order."""

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(64), nullable=False),
    Column("owner", String(128), nullable=False),
    Column("event", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending, delivered, failed
    Column("created_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),  # 0003: POSTs made
    Index("events_state", "state"),
    Index("events_owner", "owner"),
)
