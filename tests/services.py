"""Real PostgreSQL and Redis for the tests: use the running ones, or start private instances.

Order of preference: TEST_POSTGRES_URL / TEST_REDIS_URL; a server on the default local port;
a private server started here on a free port in a temporary directory (stopped at the end).
PostgreSQL refuses to run as root, so a private cluster runs as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str):
    """A missing service skips locally but fails in CI, where it must be there."""
    if in_ci():
        pytest.fail(f"required service unavailable in CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


# ---------------------------------------------------------------- PostgreSQL


def postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@dataclass
class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free port."""

    directory: Path
    port: int
    pg_ctl: str

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = [self.pg_ctl, *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    def start(self) -> None:
        result = self._run(
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.directory / "log"),
            "-w",
            "-o",
            f"-p {self.port} -h 127.0.0.1 -k {self.directory} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off",
            "start",
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stderr or result.stdout}")

    def stop(self, mode: str = "fast") -> None:
        self._run("-D", str(self.directory / "data"), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


def start_private_postgres() -> PrivatePostgres | None:
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        return None
    directory = Path(tempfile.mkdtemp(prefix="rtcheck-pg-"))
    command = [initdb, "-D", str(directory / "data"), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {result.stderr or result.stdout}")
    server = PrivatePostgres(directory, free_port(), pg_ctl)
    server.start()
    return server


def private_postgres_or_unavailable() -> PrivatePostgres:
    """A PostgreSQL of the tests' own, or `unavailable` (skip here, fail in CI) when it cannot start."""
    try:
        server = start_private_postgres()
    except RuntimeError as exc:
        unavailable(str(exc))
    if server is None:
        unavailable("no initdb/pg_ctl to start a PostgreSQL of the tests' own (apt-get install postgresql)")
    return server


def postgres_reachable(url: str) -> bool:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        engine.dispose()
        return True
    except Exception:
        return False


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    """A new database; from `template` (a migrated one) it is a file copy, much faster than migrating."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


# ---------------------------------------------------------------- Redis


@dataclass
class PrivateRedis:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--pidfile",
                str(self.directory / "redis.pid"),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            check=True,
            capture_output=True,
        )
        if not wait_until(lambda: port_open("127.0.0.1", self.port), 10):
            raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        pidfile = self.directory / "redis.pid"
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text().strip()), 15)
        wait_until(lambda: not port_open("127.0.0.1", self.port), 10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_private_redis() -> PrivateRedis | None:
    if not shutil.which("redis-server"):
        return None
    server = PrivateRedis(Path(tempfile.mkdtemp(prefix="rtcheck-redis-")), free_port())
    server.start()
    return server


def process_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
