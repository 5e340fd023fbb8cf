"""Alembic environment: runs on the connection :func:`serving.store.engine.migrate` passes in.

No ``alembic.ini`` is needed; migrations always run online, inside the caller's transaction.
"""

from __future__ import annotations

from alembic import context

from serving.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("trueframe migrations run through serving.store.engine.migrate(engine)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
