"""One settings object, read from the environment (and an optional .env file), validated at start."""

from __future__ import annotations

import functools
import ipaddress
import json
import secrets
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO = Path(__file__).resolve().parent
DEVELOPMENT_SECRET = "development-only-secret-key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    app_env: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(8050, ge=1, le=65535)
    url_prefix: str = Field("/", description="path the app is served under, e.g. /rtcheck/")
    data_dir: Path = REPO / "var"
    database_url: str = ""
    redis_url: str = ""
    secret_key: str = ""
    max_upload_mb: float = Field(20, gt=0, le=2048)
    retention_days: int = Field(30, ge=1, le=36500)
    stale_job_seconds: int = Field(120, ge=10, le=86400)
    heartbeat_seconds: int = Field(10, ge=1, le=3600)
    job_soft_time_limit: int = Field(1800, ge=5)
    job_time_limit: int = Field(1900, ge=10)
    job_memory_mb: int = Field(4096, ge=0, description="memory ceiling of one analysis process; 0: none")
    local_workers: int = Field(2, ge=1, le=64, description="processes for analyses in embedded mode")
    upload_check_seconds: float = Field(60, gt=0, le=3600, description="time one upload's check may take")
    upload_check_workers: int = Field(2, ge=1, le=64, description="upload checks at once per web process")
    ws_max_connections: int = Field(24, ge=1, le=100_000, description="open WebSockets per web process")
    ws_max_per_client: int = Field(8, ge=1, le=100_000, description="open WebSockets per client address")
    smtp_url: str = ""
    mail_from: str = "rt-check@localhost"
    flower_url: str = ""
    public_url: str = Field("", description="address users reach the app at, for links in e-mails")
    # NoDecode: read "https://a, https://b" as text and split it below (not as JSON)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    behind_proxy: bool = Field(False, description="trust X-Forwarded-* headers from one reverse proxy")
    auth_required: bool = Field(True, description="sign-in for every page, callback, API call and socket")
    # Host names the server answers to (HTTP and WebSocket); empty: derived, see trusted_hosts
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    session_cookie_secure: bool | None = Field(
        None, description="cookies only over HTTPS; default: PUBLIC_URL is https"
    )
    login_rate_limit: str = Field("10 per minute", description="failed sign-ins per client address")
    upload_rate_limit: str = Field("120 per hour", description="uploads per account (API and upload page)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"

    @field_validator("allowed_origins", "allowed_hosts", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """Comma-separated text or a JSON list; trailing slashes do not count."""
        if isinstance(value, str):
            text = value.strip()
            items = json.loads(text) if text.startswith("[") else text.split(",")
            return [str(item).strip().rstrip("/") for item in items if str(item).strip()]
        return value

    @field_validator("session_cookie_secure", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("login_rate_limit", "upload_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate such as '10 per minute' or '100/hour'") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_driver(cls, value: str) -> str:
        """PostgreSQL URLs use the psycopg 3 driver; `postgresql://`, `postgres://` and
        `postgresql+psycopg2://` (older configurations) are read as such."""
        scheme, separator, rest = value.strip().partition("://")
        if separator and scheme in ("postgres", "postgresql", "postgresql+psycopg2"):
            return f"postgresql+psycopg://{rest}"
        return value.strip()

    @field_validator("url_prefix")
    @classmethod
    def _normalise_prefix(cls, value: str) -> str:
        value = "/" + value.strip("/")
        return value if value == "/" else value + "/"

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'app.db').resolve()}"
        if self.job_time_limit <= self.job_soft_time_limit:
            raise ValueError("JOB_TIME_LIMIT must be larger than JOB_SOFT_TIME_LIMIT")
        if self.heartbeat_seconds * 3 > self.stale_job_seconds:
            raise ValueError(
                "STALE_JOB_SECONDS must be at least three HEARTBEAT_SECONDS, or healthy jobs "
                "would be failed as 'worker lost'"
            )
        if not self.auth_required and not is_loopback(self.host):
            raise ValueError(
                f"AUTH_REQUIRED=false is allowed only when HOST is a loopback address (127.0.0.1, ::1, "
                f"localhost), not {self.host!r}: without sign-in anyone who reaches the server could use it"
            )
        if self.app_env == "production":
            problems = []
            if not self.secret_key or self.secret_key == DEVELOPMENT_SECRET or len(self.secret_key) < 32:
                problems.append("SECRET_KEY must be set to a random value of at least 32 characters")
            if self.database_url.startswith("sqlite"):
                problems.append("DATABASE_URL must point at PostgreSQL (SQLite is for one laptop)")
            if "*" in self.allowed_origins:
                problems.append("ALLOWED_ORIGINS must list origins, not '*'")
            if "*" in self.allowed_hosts:
                problems.append("ALLOWED_HOSTS must list host names, not '*'")
            if problems:
                raise ValueError("refusing to start in production: " + "; ".join(problems))
        elif not self.secret_key:
            self.secret_key = DEVELOPMENT_SECRET if self.app_env == "development" else secrets.token_hex(32)
        return self

    @property
    def embedded(self) -> bool:
        """No Redis: background work runs in local processes inside the web server."""
        return not self.redis_url

    @property
    def trusted_hosts(self) -> list[str]:
        """Host names requests may carry: ALLOWED_HOSTS, or else the loopback names, HOST (unless
        a wildcard address), and the hosts of PUBLIC_URL and ALLOWED_ORIGINS."""
        if self.allowed_hosts:
            return [name.lower() for name in self.allowed_hosts]
        names = {"localhost", "127.0.0.1", "::1"}
        if self.host not in ("0.0.0.0", "::", ""):
            names.add(self.host.lower().strip("[]"))
        for url in (self.public_url, *self.allowed_origins):
            host = urlsplit(url).hostname if "://" in url else None
            if host:
                names.add(host.lower())
        return sorted(names)

    @property
    def secure_cookies(self) -> bool:
        if self.session_cookie_secure is not None:
            return self.session_cookie_secure
        return self.public_url.lower().startswith("https://")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def describe(self) -> str:
        """The mode and backends, without secrets, for the start-up log line."""
        mode = "embedded (no Redis: local processes, SQLite by default)" if self.embedded else "full stack"
        return (
            f"mode={mode}; env={self.app_env}; sign-in={'required' if self.auth_required else 'off'}; "
            f"database={redact(self.database_url)}; "
            f"redis={redact(self.redis_url) or 'none'}; listen={self.host}:{self.port}{self.url_prefix}"
        )


def is_loopback(host: str) -> bool:
    """True for a name or address only this machine reaches (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def redact(url: str) -> str:
    """A URL with any password replaced by ***."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@functools.cache
def get_settings() -> Settings:
    return Settings()
