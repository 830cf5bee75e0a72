"""The deployment files agree with the code: docker-compose.yml, .env.example, deploy/nginx.conf.

The compose file is checked with `docker-compose config` (Debian's docker-compose package; it
validates without a Docker engine). When it is missing, scripts/install-system-packages.sh
installs it; if that fails the compose tests skip locally and fail in CI.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from settings import Settings
from tests import services

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
OVERRIDE_EXAMPLE = REPO / "docker-compose.override.example.yml"
ENV_EXAMPLE = REPO / ".env.example"
NGINX_CONF = REPO / "deploy" / "nginx.conf"
DOCKERFILE = REPO / "Dockerfile"
SYSTEMD = REPO / "deploy" / "systemd"

SETTINGS_VARIABLES = {name.upper() for name in Settings.model_fields}
# Read by Compose itself, by the postgres/flower containers, or by gunicorn; not by settings.py.
COMPOSE_ONLY_VARIABLES = {
    "COMPOSE_PROJECT_NAME",
    "ADMIN_USERNAME",
    "ADMIN_PASSWORD",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "REDIS_HOST",
    "REDIS_PORT",
    "HTTP_PORT",
    "WORKER_CONCURRENCY",
    "FLOWER_USER",
    "FLOWER_PASSWORD",
    "FLOWER_PORT",
    "RTCHECK_IMAGE",
    "FORWARDED_ALLOW_IPS",
}
SECRETS = {"SECRET_KEY": "k" * 48, "POSTGRES_PASSWORD": "composetest0password"}
SERVICES = {"postgres", "redis", "migrate", "web", "worker", "control", "beat", "flower", "nginx"}
APP_SERVICES = {"migrate", "web", "worker", "control", "beat", "flower"}

# ${NAME}, ${NAME:-default}, ${NAME:?message} or $NAME, but not $$NAME (expanded in the container).
COMPOSE_REFERENCE = re.compile(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)")
# NAME=value, or "# NAME=value" for an optional line shown with its default.
ENV_LINE = re.compile(r"^(?:#\s?)?([A-Z][A-Z0-9_]*)=", re.MULTILINE)


# ---------------------------------------------------------------- docker-compose


@functools.cache
def find_or_install_compose() -> tuple[str | None, str]:
    """The docker-compose binary, installed first if needed (once per test run); else why not."""
    found = shutil.which("docker-compose")
    if found:
        return found, ""
    try:
        installer = subprocess.run(
            [str(REPO / "scripts" / "install-system-packages.sh"), "compose"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        output = (installer.stderr or installer.stdout).strip()[-500:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        output = f"{type(exc).__name__}: {exc}"
    found = shutil.which("docker-compose")
    reason = (
        f"docker-compose is missing and `scripts/install-system-packages.sh compose` could not install it: {output}"
    )
    return found, "" if found else reason


@pytest.fixture(scope="module")
def compose() -> str:
    found, reason = find_or_install_compose()
    if found is None:
        services.unavailable(reason)
    return found


@pytest.fixture(scope="module")
def empty_env_file(tmp_path_factory) -> Path:
    """Stands in for a developer's own .env, so it cannot change what the tests see."""
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


def compose_environment(**values: str) -> dict[str, str]:
    """The caller's environment without any variable the deployment files use, plus `values`."""
    text = COMPOSE_FILE.read_text() + ENV_EXAMPLE.read_text()
    used = set(COMPOSE_REFERENCE.findall(text)) | set(ENV_LINE.findall(text)) | SETTINGS_VARIABLES
    env = {name: value for name, value in os.environ.items() if name not in used}
    env.update(values)
    return env


def run_compose(
    compose: str, env_file: Path, *args: str, files=(COMPOSE_FILE,), env: dict | None = None
) -> subprocess.CompletedProcess:
    command = [compose, "--env-file", str(env_file)]
    for file in files:
        command += ["-f", str(file)]
    return subprocess.run(
        [*command, *args],
        cwd=REPO,
        env=compose_environment(**SECRETS) if env is None else env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def yaml_to_data(text: str, compose: str):
    """Parse YAML with PyYAML if this interpreter has it, else with the one docker-compose runs on."""
    try:
        import yaml
    except ImportError:
        pass
    else:
        return yaml.safe_load(text)
    first_line = Path(compose).read_bytes()[:200].split(b"\n", 1)[0].decode(errors="replace")
    interpreter = first_line[2:].strip().split()[0] if first_line.startswith("#!") else ""
    if not interpreter:
        services.unavailable(f"cannot parse YAML: no PyYAML here and {compose} is not a Python script")
    parsed = subprocess.run(
        [interpreter, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert parsed.returncode == 0, parsed.stderr
    return json.loads(parsed.stdout)


def resolved_config(compose: str, env_file: Path, files=(COMPOSE_FILE,), env: dict | None = None) -> dict:
    """The compose file as Compose understands it: interpolated, anchors merged."""
    as_json = run_compose(compose, env_file, "config", "--format", "json", files=files, env=env)
    if as_json.returncode == 0 and as_json.stdout.lstrip().startswith("{"):  # Compose v2
        return json.loads(as_json.stdout)
    as_yaml = run_compose(compose, env_file, "config", files=files, env=env)
    assert as_yaml.returncode == 0, as_yaml.stderr
    return yaml_to_data(as_yaml.stdout, compose)


@pytest.fixture(scope="module")
def config(compose, empty_env_file) -> dict:
    return resolved_config(compose, empty_env_file)


def command_line(service: dict) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def healthcheck_test(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def test_compose_file_is_valid_when_the_secrets_are_set(compose, empty_env_file):
    result = run_compose(compose, empty_env_file, "config", "-q")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "POSTGRES_PASSWORD"])
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_compose_file_has_no_default_for_a_secret(compose, empty_env_file, missing, how):
    values = {name: value for name, value in SECRETS.items() if name != missing}
    if how == "empty":
        values[missing] = ""
    result = run_compose(compose, empty_env_file, "config", "-q", env=compose_environment(**values))
    assert result.returncode != 0, f"compose accepted a configuration without {missing}"
    assert missing in result.stderr


def test_env_example_as_is_is_refused_until_the_secrets_are_filled_in(compose):
    refused = run_compose(compose, ENV_EXAMPLE, "config", "-q", env=compose_environment())
    assert refused.returncode != 0
    accepted = run_compose(compose, ENV_EXAMPLE, "config", "-q")
    assert accepted.returncode == 0, accepted.stderr


def test_development_override_example_is_valid(compose, empty_env_file):
    merged = resolved_config(compose, empty_env_file, files=(COMPOSE_FILE, OVERRIDE_EXAMPLE))
    web = merged["services"]["web"]
    assert web["environment"]["APP_ENV"] == "development"
    published = json.dumps(web["ports"])
    assert "127.0.0.1" in published and "8050" in published
    for name in APP_SERVICES:
        volumes = json.dumps(merged["services"][name].get("volumes", []))
        assert ":/app" in volumes or '"/app"' in volumes, f"{name} does not run the mounted source"


def test_compose_has_every_service(config):
    assert set(config["services"]) == SERVICES


def test_application_services_run_one_image(config):
    images = {config["services"][name]["image"] for name in APP_SERVICES}
    assert len(images) == 1


def test_processes_start_with_the_documented_commands(config):
    services_ = config["services"]
    # The schema first, then the first admin account when there is none (ADMIN_USERNAME/PASSWORD).
    assert command_line(services_["migrate"]) == "sh -c python -m store upgrade && python -m store users ensure-admin"
    web = command_line(services_["web"])
    assert web.startswith("gunicorn -k gthread --threads 32 -w 2 -b 0.0.0.0:8050") and web.endswith("app:server")
    assert "celery -A app:celery_app worker -Q analyses --concurrency 2" in command_line(services_["worker"])
    # Page callbacks and upkeep have their own queue and worker (worker/celery_app.py).
    assert "celery -A app:celery_app worker -Q control --pool threads" in command_line(services_["control"])
    assert "celery -A app:celery_app beat" in command_line(services_["beat"])
    flower = command_line(services_["flower"])
    assert "celery -A app:celery_app flower" in flower
    assert "--url-prefix=flower" in flower and "--basic-auth=" in flower


def test_web_waits_for_the_migration_and_redis(config):
    for name in ("web", "worker", "control", "beat"):
        depends = config["services"][name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    migrate = config["services"]["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate.get("restart", "no") == "no"


def test_beat_runs_once(config):
    beat = config["services"]["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) <= 1
    assert "--schedule" in command_line(beat)


def test_flower_is_optional_and_not_public(config):
    flower = config["services"]["flower"]
    assert flower.get("profiles") == ["monitoring"]
    for port in flower.get("ports", []):
        host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
        assert host_ip == "127.0.0.1", port


def test_only_nginx_publishes_a_port(config):
    published = {name for name, service in config["services"].items() if service.get("ports")}
    assert published <= {"nginx", "flower"}
    assert "8050" in json.dumps(config["services"]["web"].get("expose", []))
    nginx_volumes = json.dumps(config["services"]["nginx"]["volumes"])
    assert "deploy/nginx.conf" in nginx_volumes and ":ro" in nginx_volumes


def test_redis_keeps_queued_tasks(config):
    command = command_line(config["services"]["redis"])
    assert re.search(r"--appendonly\s+yes", command)
    assert re.search(r"--maxmemory-policy\s+noeviction", command)


def test_data_lives_in_named_volumes(config):
    assert {"postgres-data", "redis-data"} <= set(config.get("volumes", {}))
    assert "postgres-data:/var/lib/postgresql/data" in json.dumps(config["services"]["postgres"]["volumes"])
    assert "redis-data:/data" in json.dumps(config["services"]["redis"]["volumes"])


def test_services_have_healthchecks(config):
    services_ = config["services"]
    assert "pg_isready" in healthcheck_test(services_["postgres"])
    assert "redis-cli ping" in healthcheck_test(services_["redis"])
    web = healthcheck_test(services_["web"])
    assert "urllib" in web and "api/health" in web
    assert "inspect ping" in healthcheck_test(services_["worker"])


def test_application_environment_is_accepted_by_settings(config, monkeypatch):
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    environment = config["services"]["web"]["environment"]
    for name, value in environment.items():
        monkeypatch.setenv(name, "" if value is None else str(value))
    settings = Settings(_env_file=None)
    assert settings.app_env == "production"
    assert settings.database_url.startswith("postgresql+psycopg://") and "@postgres:5432/" in settings.database_url
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.allowed_origins == []
    assert settings.log_format == "json"


def test_allowed_origins_written_as_in_env_example_reach_the_settings(compose, tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("ALLOWED_ORIGINS='[\"https://rtcheck.example.org\"]'\n")
    environment = resolved_config(compose, env_file)["services"]["worker"]["environment"]
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, "" if value is None else str(value))
    assert Settings(_env_file=None).allowed_origins == ["https://rtcheck.example.org"]


# ---------------------------------------------------------------- variables


def test_shared_environment_holds_only_settings():
    text = COMPOSE_FILE.read_text()
    block = re.search(r"^x-app-env: &app-env\n((?:[ \t]+.*\n|\n)+)", text, re.MULTILINE)
    assert block, "docker-compose.yml has no x-app-env anchor"
    keys = set(re.findall(r"^  ([A-Z][A-Z0-9_]*):", block.group(1), re.MULTILINE))
    assert keys, "the x-app-env anchor is empty"
    assert keys <= SETTINGS_VARIABLES, f"not settings: {sorted(keys - SETTINGS_VARIABLES)}"


@pytest.mark.parametrize("path", [COMPOSE_FILE, OVERRIDE_EXAMPLE, ENV_EXAMPLE], ids=lambda p: p.name)
def test_every_variable_is_a_setting_or_a_compose_variable(path):
    text = path.read_text()
    names = set(COMPOSE_REFERENCE.findall(text))
    if path == ENV_EXAMPLE:
        names |= set(ENV_LINE.findall(text))
    unknown = names - SETTINGS_VARIABLES - COMPOSE_ONLY_VARIABLES
    assert not unknown, f"{path.name} uses variables settings.py does not know: {sorted(unknown)}"


def test_every_setting_is_described_in_env_example():
    listed = set(ENV_LINE.findall(ENV_EXAMPLE.read_text()))
    missing = SETTINGS_VARIABLES - listed
    assert not missing, f".env.example does not mention {sorted(missing)}"


def test_env_example_has_no_secret_values():
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE))
    for name in ("SECRET_KEY", "POSTGRES_PASSWORD", "FLOWER_PASSWORD"):
        assert values.get(name, "") == "", f"{name} has a value in .env.example"


# ---------------------------------------------------------------- nginx


def nginx_text() -> str:
    return re.sub(r"#[^\n]*", "", NGINX_CONF.read_text())


def nginx_block(opening: str) -> str:
    """The body of the block that starts with `opening` (e.g. "location /ws/")."""
    text = nginx_text()
    start = re.search(re.escape(opening) + r"\s*\{", text)
    assert start, f"no `{opening}` block in deploy/nginx.conf"
    depth, position = 1, start.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(text[position], 0)
        position += 1
    return text[start.end() : position - 1]


def directives(block: str) -> list[str]:
    return [" ".join(line.split()) for line in block.split(";")]


def test_nginx_passes_websocket_upgrades_on_ws():
    upgrade_map = nginx_block("map $http_upgrade $connection_upgrade")
    assert re.search(r"default\s+upgrade", upgrade_map)
    ws = directives(nginx_block("location /ws/"))
    for expected in (
        "proxy_http_version 1.1",
        "proxy_set_header Upgrade $http_upgrade",
        "proxy_set_header Connection $connection_upgrade",
        "proxy_buffering off",
    ):
        assert expected in ws, f"location /ws/ lacks `{expected}`"
    timeout = next(d for d in ws if d.startswith("proxy_read_timeout"))
    assert int(re.search(r"(\d+)s?$", timeout).group(1)) >= 3600


def test_nginx_keeps_the_host_for_the_origin_check():
    # The WebSocket route compares the page's Origin with Host: $host would drop the port.
    for location in ("location /ws/", "location /"):
        assert "proxy_set_header Host $http_host" in directives(nginx_block(location)), location


def test_nginx_routes_and_limits():
    server = nginx_text()
    assert "web:8050" in server and "flower:5555" in server
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for" in directives(nginx_block("location /"))
    assert "proxy_pass" in nginx_block("location /flower/")
    size = re.search(r"client_max_body_size\s+(\d+)m", server)
    assert size, "client_max_body_size is not set in megabytes"
    default_upload_mb = Settings.model_fields["max_upload_mb"].default
    # The app itself accepts 1.4 × MAX_UPLOAD_MB + 1 MB (base64 uploads); nginx must not cut in first.
    assert int(size.group(1)) >= default_upload_mb * 1.4 + 1
    assert re.search(r"^\s*gzip on;", server, re.MULTILINE)


# ---------------------------------------------------------------- image and units


def test_dockerfile_pins_its_base_and_drops_root():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim-bookworm$", text, re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert "requirements-dev" not in text
    assert re.search(r'^CMD \["gunicorn", "-k", "gthread"', text, re.MULTILINE)


@pytest.mark.parametrize(
    ("unit", "command"),
    [
        ("rtcheck-web.service", "gunicorn -k gthread"),
        ("rtcheck-worker.service", "celery -A app:celery_app worker -Q analyses"),
        ("rtcheck-beat.service", "celery -A app:celery_app beat"),
    ],
)
def test_systemd_units(unit, command):
    text = (SYSTEMD / unit).read_text()
    assert "EnvironmentFile=/etc/rtcheck/env" in text
    assert "WorkingDirectory=/opt/rtcheck" in text
    assert "Restart=on-failure" in text and "NoNewPrivileges=yes" in text
    assert re.search(r"^ExecStart=/opt/rtcheck/\.venv/bin/" + re.escape(command), text, re.MULTILINE)
    if unit == "rtcheck-web.service":
        assert "ExecStartPre=/opt/rtcheck/.venv/bin/python -m store upgrade" in text
