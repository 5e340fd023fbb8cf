"""Alembic migrations of the service store, run programmatically by :func:`serving.store.engine.migrate`."""
