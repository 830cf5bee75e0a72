"""Persistence: jobs, uploads and results in PostgreSQL or SQLite (SQLAlchemy 2, Alembic)."""
