"""Browser tests: headless Chromium (Playwright) against the app served for real, in both modes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field

import pytest
import redis
import requests

from tests import services
from tests.conftest import REPO
from tests.services import free_port, wait_until
from tests.stack import celery_worker_command, gunicorn_command, spawn

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        subprocess.run([str(REPO / "scripts" / "install-system-packages.sh"), "chromium"], capture_output=True)
    if not os.path.exists(CHROMIUM):
        services.unavailable("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class ConsoleLog:
    errors: list[str] = field(default_factory=list)

    def record(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")


@pytest.fixture
def page(browser):
    """A fresh browser page; the test fails if the page logged any console error."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    tab = context.new_page()
    log = ConsoleLog()
    tab.on("console", log.record)
    tab.on("pageerror", lambda error: log.errors.append(f"uncaught: {error}"))
    tab.console_log = log
    yield tab
    context.close()
    assert log.errors == [], "browser console errors:\n" + "\n".join(log.errors)


@dataclass
class AppServer:
    url: str
    mode: str
    processes: list
    logs: list
    env: dict = field(default_factory=dict)

    def store(self, *args: str, password: str | None = None) -> str:
        """`python -m store ...` against this server's database (e.g. to add an account)."""
        done = subprocess.run(
            [sys.executable, "-m", "store", *args],
            cwd=REPO,
            env=self.env,
            input=f"{password}\n" if password else None,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def api(self, path: str):
        return requests.get(f"{self.url}{path}", timeout=30)

    def log_tail(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.logs)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _base_env(values: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({k.upper(): str(v) for k, v in values.items()})
    env["PYTHONPATH"] = str(REPO)
    return env


def start_embedded(tmp, **settings) -> AppServer:
    port = free_port()
    env = _base_env(
        {
            "data_dir": tmp,
            "port": port,
            "secret_key": "e" * 40,
            "app_env": "test",
            "local_workers": 2,
            "stale_job_seconds": 10,
            "heartbeat_seconds": 1,
            "auth_required": False,
            **settings,
        }
    )
    log = tmp / "app.log"
    process = spawn([sys.executable, "app.py"], env, log)
    server = AppServer(f"http://127.0.0.1:{port}", "embedded", [process], [log], env)
    if not wait_until(lambda: _healthy(server), 60):
        server.stop()
        raise RuntimeError(f"the app did not start:\n{server.log_tail()}")
    return server


def start_full(tmp, database_url: str, redis_url: str, **settings) -> AppServer:
    port = free_port()
    env = _base_env(
        {
            "database_url": database_url,
            "redis_url": redis_url,
            "secret_key": "f" * 40,
            "app_env": "test",
            "data_dir": tmp,
            "stale_job_seconds": 10,
            "heartbeat_seconds": 1,
            "auth_required": False,
            **settings,
        }
    )
    subprocess.run([sys.executable, "-m", "store", "upgrade"], cwd=REPO, env=env, check=True, capture_output=True)
    worker_log, web_log = tmp / "worker.log", tmp / "web.log"
    worker = spawn(celery_worker_command(queues="analyses", name="browser"), env, worker_log)
    # As in docker-compose.yml: page callbacks and upkeep have a worker of their own.
    control_log = tmp / "control.log"
    control = spawn(
        celery_worker_command(queues="control", pool="threads", concurrency=4, name="control"), env, control_log
    )
    web = spawn(gunicorn_command(port), env, web_log)
    server = AppServer(
        f"http://127.0.0.1:{port}", "full", [worker, control, web], [worker_log, control_log, web_log], env
    )
    if not wait_until(lambda: _healthy(server, workers=True), 90):
        server.stop()
        raise RuntimeError(f"the stack did not start:\n{server.log_tail()}")
    return server


def _healthy(server: AppServer, workers: bool = False) -> bool:
    try:
        body = requests.get(f"{server.url}/api/health", timeout=2).json()
    except (requests.RequestException, ValueError):
        return False
    return body["database"]["ok"] and (body["workers"]["ok"] or not workers)


@pytest.fixture(scope="module", params=["embedded", "full"])
def app_server(request, tmp_path_factory):
    """The app as users run it: `python app.py` (embedded), or gunicorn + Celery + PostgreSQL + Redis."""
    yield from _served(request, tmp_path_factory)


@pytest.fixture(scope="module", params=["embedded", "full"])
def signed_in_server(request, tmp_path_factory):
    """The same, with sign-in required (AUTH_REQUIRED=true, the default outside `make run`)."""
    yield from _served(request, tmp_path_factory, auth_required=True)


def _served(request, tmp_path_factory, **settings):
    tmp = tmp_path_factory.mktemp(f"app-{request.param}")
    if request.param == "embedded":
        server = start_embedded(tmp, **settings)
        yield server
        server.stop()
        return
    admin = request.getfixturevalue("postgres_admin_url")
    private_redis = request.getfixturevalue("private_redis")
    name = f"rtcheck_browser_{uuid.uuid4().hex[:10]}"
    url = services.create_database(admin, name)
    redis.Redis.from_url(private_redis.url).flushall()
    server = start_full(tmp, url, private_redis.url, **settings)
    yield server
    server.stop()
    services.drop_database(admin, name)


class CuttableProxy:
    """A TCP relay in front of the app whose open WebSocket connections can be cut mid-stream.

    Only upgraded connections are cut (recognised by their first request), so ordinary requests
    in flight finish normally: the fault is the socket dying, as when a server restarts it.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        first = client.recv(65536)
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        upstream.sendall(first)
        if b"upgrade: websocket" in first.lower():
            with self.lock:
                self.sockets += [client, upstream]
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> int:
        """Drop every open WebSocket connection; new ones are still accepted."""
        with self.lock:
            doomed, self.sockets = self.sockets, []
        for connection in doomed:
            try:
                connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            except OSError:
                pass
        return len(doomed) // 2

    def close(self) -> None:
        self.listener.close()
        self.cut()
