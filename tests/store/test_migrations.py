"""Alembic migrations on SQLite and PostgreSQL: up, down, and equal to the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from store.db import Database
from store.migrate import current_revision, downgrade, head_revision, upgrade
from store.models import TABLES_IN_DEPENDENCY_ORDER, Base


def test_upgrade_then_downgrade_then_upgrade(database_url):
    db = Database(database_url)
    upgrade(db)
    assert current_revision(db) == head_revision()
    assert set(TABLES_IN_DEPENDENCY_ORDER) <= set(inspect(db.engine).get_table_names())
    downgrade(db, "base")
    assert current_revision(db) is None
    assert not set(TABLES_IN_DEPENDENCY_ORDER) & set(inspect(db.engine).get_table_names())
    upgrade(db)
    assert current_revision(db) == head_revision()
    db.dispose()


def test_migrated_schema_matches_the_models_exactly(database_url):
    db = Database(database_url)
    upgrade(db)
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    db.dispose()
