"""docs/configuration.md against the code: every setting documented, with the real defaults and ranges."""

from __future__ import annotations

import re
from typing import Literal, get_args, get_origin

import annotated_types
import pytest
from pydantic import TypeAdapter, ValidationError

from settings import Settings
from tests.conftest import REPO

DOC = REPO / "docs" / "configuration.md"
COMPOSE_HEADING = "## Docker Compose only"
APP_COLUMNS = ["Variable", "Type", "Default", "Allowed values", "Example"]
COMPOSE_COLUMNS = ["Variable", "Default", "Example", "What it does"]
ROW = re.compile(r"^\|\s*`(?P<name>[A-Z][A-Z0-9_]*)`\s*\|")


def table_rows(text: str, columns: list[str]) -> dict[str, dict[str, str]]:
    """The rows of every Markdown table in `text` that has exactly these columns, by variable name."""
    rows: dict[str, dict[str, str]] = {}
    header = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        match = ROW.match(line)
        if header == columns and match:
            assert len(cells) == len(columns), f"malformed row: {line}"
            assert match["name"] not in rows, f"{match['name']} is documented twice"
            rows[match["name"]] = dict(zip(columns, cells, strict=True))
    return rows


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def app_rows(doc) -> dict[str, dict[str, str]]:
    return table_rows(doc.split(COMPOSE_HEADING)[0], APP_COLUMNS)


@pytest.fixture(scope="module")
def compose_rows(doc) -> dict[str, dict[str, str]]:
    assert COMPOSE_HEADING in doc
    return table_rows(doc.split(COMPOSE_HEADING)[1], COMPOSE_COLUMNS)


@pytest.fixture
def clean_env(monkeypatch):
    """No setting from the environment of whoever runs the tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def unquoted(cell: str) -> str:
    assert cell.startswith("`") and cell.endswith("`"), f"expected a literal value in backticks, found {cell!r}"
    return cell[1:-1]


def test_every_setting_is_documented_once_and_nothing_else(doc, app_rows):
    names = {name.upper() for name in Settings.model_fields}
    for name in sorted(names):
        assert name in doc, f"{name} is not mentioned in {DOC.name}"
    assert set(app_rows) == names


@pytest.mark.parametrize(
    "field",
    [
        "app_env",
        "host",
        "port",
        "url_prefix",
        "behind_proxy",
        "local_workers",
        "ws_max_connections",
        "ws_max_per_client",
        "max_upload_mb",
        "retention_days",
        "stale_job_seconds",
        "heartbeat_seconds",
        "job_soft_time_limit",
        "job_time_limit",
        "job_memory_mb",
        "mail_from",
        "log_level",
        "log_format",
        "auth_required",
        "login_rate_limit",
        "upload_rate_limit",
    ],
)
def test_documented_default_is_the_real_one(app_rows, clean_env, field):
    info = Settings.model_fields[field]
    written = unquoted(app_rows[field.upper()]["Default"])
    value = TypeAdapter(info.annotation).validate_strings(written)
    assert value == info.default
    assert value == getattr(Settings(_env_file=None), field)


def test_the_derived_database_default_is_the_documented_one(app_rows, clean_env, tmp_path):
    written = unquoted(app_rows["DATABASE_URL"]["Default"])
    assert "<DATA_DIR>" in written
    expected = written.replace("<DATA_DIR>", str(tmp_path.resolve()))
    assert Settings(_env_file=None, data_dir=tmp_path).database_url == expected
    assert Settings.model_fields["database_url"].default == ""


def test_empty_defaults_are_documented_as_empty(app_rows):
    derived = {"database_url"}  # empty means the SQLite file in DATA_DIR, tested above
    for name, info in Settings.model_fields.items():
        documented = app_rows[name.upper()]["Default"]
        if name not in derived and (info.default == "" or info.default_factory is list):
            assert documented.startswith("empty"), f"{name.upper()}: default written as {documented!r}"


def range_text(metadata: list) -> str | None:
    """How docs/configuration.md writes a numeric range, from the field's constraints."""
    bounds = {type(item).__name__: item for item in metadata if isinstance(item, annotated_types.BaseMetadata)}
    ge = bounds["Ge"].ge if "Ge" in bounds else None
    gt = bounds["Gt"].gt if "Gt" in bounds else None
    le = bounds["Le"].le if "Le" in bounds else None
    if ge is not None and le is not None:
        return f"{ge} to {le}"
    parts = []
    if ge is not None:
        parts.append(f"at least {ge}")
    if gt is not None:
        parts.append(f"more than {gt}")
    if le is not None:
        parts.append(f"at most {le}")
    return ", ".join(parts) or None


def test_documented_ranges_and_choices_are_the_real_ones(app_rows):
    checked = 0
    for name, info in Settings.model_fields.items():
        allowed = app_rows[name.upper()]["Allowed values"]
        expected = range_text(info.metadata)
        if expected is not None:
            assert allowed.startswith(expected), f"{name.upper()}: {allowed!r}, expected {expected!r}"
            checked += 1
        if get_origin(info.annotation) is Literal:
            choices = re.findall(r"`([^`]+)`", allowed)
            assert choices == list(get_args(info.annotation)), f"{name.upper()}: {allowed!r}"
            checked += 1
    assert checked >= 10


def test_the_documented_secret_length_is_enforced_in_production(app_rows, clean_env):
    match = re.search(r"at least (\d+) characters in production", app_rows["SECRET_KEY"]["Allowed values"])
    assert match, app_rows["SECRET_KEY"]
    length = int(match[1])
    values = {"app_env": "production", "database_url": "postgresql+psycopg://u:p@db/rtcheck"}
    assert Settings(_env_file=None, secret_key="k" * length, **values).secret_key == "k" * length
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None, secret_key="k" * (length - 1), **values)


def compose_variables() -> set[str]:
    """Every variable docker-compose.yml substitutes or .env.example mentions."""
    compose = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose))
    names |= set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    return names


def test_compose_only_variables_have_their_own_section(compose_rows):
    settings_names = {name.upper() for name in Settings.model_fields}
    compose_only = compose_variables() - settings_names
    assert {"POSTGRES_PASSWORD", "HTTP_PORT", "WORKER_CONCURRENCY", "RTCHECK_IMAGE"} <= compose_only
    assert compose_only <= set(compose_rows), f"undocumented: {sorted(compose_only - set(compose_rows))}"
    assert not set(compose_rows) & settings_names, "application settings belong in their own sections"
