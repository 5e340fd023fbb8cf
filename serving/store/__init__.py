"""The one store of the service: SQLAlchemy 2 Core tables, an engine for SQLite or PostgreSQL, and
the Alembic migrations shipped in the package (run at store open, ``upgrade head``)."""
