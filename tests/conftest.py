"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests import services

REPO = Path(__file__).resolve().parents[1]


def sample_data_dir() -> Path:
    """The real sample data: $SAMPLE_DATA_DIR, or ../shared/data beside the repository."""
    configured = os.environ.get("SAMPLE_DATA_DIR")
    return Path(configured) if configured else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    directory = sample_data_dir()
    if not (directory / "porcine_brain_gangliosides.csv").is_file():
        pytest.fail(
            f"sample data not found in {directory}; set SAMPLE_DATA_DIR to the folder holding "
            "porcine_brain_gangliosides.csv"
        )
    return directory


@pytest.fixture(scope="session")
def porcine_csv(sample_dir: Path) -> Path:
    return sample_dir / "porcine_brain_gangliosides.csv"


@pytest.fixture(scope="session")
def tiny_csv(sample_dir: Path) -> Path:
    return sample_dir / "tiny_with_bom.csv"


# ---------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def postgres_admin_url():
    """A PostgreSQL server to create test databases on (see tests/services.py)."""
    configured = os.environ.get("TEST_POSTGRES_URL")
    if configured:
        if not services.postgres_reachable(configured):
            services.unavailable(f"TEST_POSTGRES_URL {configured} is not reachable")
        yield configured
        return
    local = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    if services.port_open("127.0.0.1", 5432) and services.postgres_reachable(local):
        yield local
        return
    server = services.private_postgres_or_unavailable()
    try:
        yield server.url
    finally:
        server.remove()


@pytest.fixture
def private_postgres():
    """A PostgreSQL server of this test's own, so the test may stop or restart it."""
    server = services.private_postgres_or_unavailable()
    yield server
    server.remove()


@pytest.fixture
def postgres_url(postgres_admin_url):
    """A fresh, empty PostgreSQL database for one test."""
    name = f"rtcheck_test_{uuid.uuid4().hex[:12]}"
    url = services.create_database(postgres_admin_url, name)
    yield url
    services.drop_database(postgres_admin_url, name)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    """Each test using this runs once on a SQLite file and once on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url):
    """One database migrated once per session; tests get copies (CREATE DATABASE ... TEMPLATE)."""
    from store.db import Database
    from store.migrate import upgrade

    name = f"rtcheck_template_{uuid.uuid4().hex[:12]}"
    db = Database(services.create_database(postgres_admin_url, name))
    upgrade(db)
    db.dispose()
    yield name
    services.drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    from store.db import Database
    from store.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "migrated.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


@pytest.fixture
def migrated_postgresql_url(postgres_admin_url, postgres_template):
    """A fresh PostgreSQL database at the newest schema, copied from the session's template."""
    name = f"rtcheck_test_{uuid.uuid4().hex[:12]}"
    yield services.create_database(postgres_admin_url, name, template=postgres_template)
    services.drop_database(postgres_admin_url, name)


@pytest.fixture
def migrated_sqlite_url(sqlite_template, tmp_path) -> str:
    shutil.copyfile(sqlite_template, tmp_path / "test.db")
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request):
    """A database at the newest schema; each test using it runs on SQLite and on PostgreSQL."""
    from store.db import Database

    db = Database(request.getfixturevalue(f"migrated_{request.param}_url"))
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def private_redis():
    """A Redis of our own on a free port, so tests may flush or restart it without disturbing anyone."""
    try:
        server = services.start_private_redis()
    except RuntimeError as exc:
        services.unavailable(str(exc))
    if server is None:
        services.unavailable("redis-server is not installed (apt-get install redis-server)")
    yield server
    server.remove()
