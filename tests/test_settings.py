"""The settings object: defaults, parsing, and what production refuses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from settings import DEVELOPMENT_SECRET, Settings, redact

STRONG = "k" * 40
POSTGRES = "postgresql+psycopg://rtcheck:secret@db:5432/rtcheck"


def test_embedded_defaults_need_nothing(tmp_path):
    settings = Settings(data_dir=tmp_path, _env_file=None)
    assert settings.embedded and settings.database_url == f"sqlite:///{(tmp_path / 'app.db').resolve()}"
    assert settings.secret_key == DEVELOPMENT_SECRET
    assert settings.max_upload_bytes == 20 * 1024 * 1024


@pytest.mark.parametrize(
    "changes, complaint",
    [
        ({"secret_key": ""}, "SECRET_KEY"),
        ({"secret_key": DEVELOPMENT_SECRET}, "SECRET_KEY"),
        ({"secret_key": "short"}, "SECRET_KEY"),
        ({"database_url": "sqlite:///x.db"}, "PostgreSQL"),
        ({"allowed_origins": "*"}, "ALLOWED_ORIGINS"),
    ],
)
def test_production_refuses_unsafe_settings(changes, complaint):
    values = {"app_env": "production", "secret_key": STRONG, "database_url": POSTGRES, **changes}
    with pytest.raises(ValidationError, match=complaint):
        Settings(_env_file=None, **values)


def test_production_starts_with_safe_settings():
    settings = Settings(
        _env_file=None, app_env="production", secret_key=STRONG, database_url=POSTGRES, redis_url="redis://redis:6379/0"
    )
    assert not settings.embedded
    line = settings.describe()
    assert "secret" not in line and STRONG not in line and "full stack" in line


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("", []),
        ("[]", []),
        ("https://a.example/, https://b.example", ["https://a.example", "https://b.example"]),
        ('["https://a.example"]', ["https://a.example"]),
    ],
)
def test_allowed_origins_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("ALLOWED_ORIGINS", raw)
    assert Settings(_env_file=None).allowed_origins == expected


def test_bad_values_are_refused_with_the_variable_named(monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_MB", "-3")
    with pytest.raises(ValidationError, match="max_upload_mb"):
        Settings(_env_file=None)
    monkeypatch.delenv("MAX_UPLOAD_MB")
    with pytest.raises(ValidationError, match="JOB_TIME_LIMIT"):
        Settings(_env_file=None, job_soft_time_limit=100, job_time_limit=50)


def test_redact_hides_passwords_only():
    assert redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"
    assert redact("") == ""


def test_the_stale_limit_must_leave_room_for_missed_heartbeats():
    with pytest.raises(ValidationError, match="STALE_JOB_SECONDS"):
        Settings(_env_file=None, heartbeat_seconds=10, stale_job_seconds=20)
    assert Settings(_env_file=None, heartbeat_seconds=10, stale_job_seconds=30).stale_job_seconds == 30


@pytest.mark.parametrize(
    "given",
    [POSTGRES, "postgresql://rtcheck:secret@db:5432/rtcheck", "postgresql+psycopg2://rtcheck:secret@db:5432/rtcheck"],
)
def test_postgresql_urls_of_any_spelling_use_the_psycopg_driver(given, tmp_path):
    assert Settings(database_url=given, data_dir=tmp_path, _env_file=None).database_url == POSTGRES


def test_other_database_urls_are_kept_as_given(tmp_path):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    assert Settings(database_url=url, data_dir=tmp_path, _env_file=None).database_url == url
