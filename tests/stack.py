"""The real stack for tests: Celery worker processes, a live web server, WebSocket clients."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
import requests
import websocket
from werkzeug.serving import make_server

from tests.conftest import REPO
from tests.services import free_port, wait_until


def stack_env(settings_values: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update({key.upper(): str(value) for key, value in settings_values.items()})
    env["PYTHONPATH"] = str(REPO)
    return env


def celery_worker_command(
    app: str = "app:celery_app",
    *,
    queues: str = "analyses,control",
    concurrency: int = 2,
    pool: str = "prefork",
    name: str = "test",
    loglevel: str = "INFO",
) -> list[str]:
    """`celery worker` as docker-compose.yml runs it; the one command line tests and benchmarks use."""
    return [
        *(sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queues, "--pool", pool),
        *("-c", str(concurrency), "-n", f"{name}-{free_port()}@%h", "--without-gossip", "--without-mingle"),
        *("--loglevel", loglevel),
    ]


def gunicorn_command(port: int, *, threads: int = 32, workers: int = 1) -> list[str]:
    """The web server as the README deploys it (gthread workers)."""
    return [
        *(sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", str(threads), "-w", str(workers)),
        *("-b", f"127.0.0.1:{port}", "--timeout", "120", "app:server"),
    ]


def spawn(command: list[str], env: dict, log_path: Path | None = None) -> subprocess.Popen:
    """A service process in its own process group (stopped with its children), logging to a file."""
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - the child holds it
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


class GunicornServer:
    """The app under gunicorn (gthread), started from settings values, stopped with its workers."""

    def __init__(self, settings_values: dict, log_path: Path, *, threads: int = 32) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process = spawn(gunicorn_command(self.port, threads=threads), stack_env(settings_values), log_path)

    def start(self, timeout: float = 60) -> GunicornServer:
        if not wait_until(lambda: self.process.poll() is not None or self._healthy(), timeout) or self.process.poll():
            self.stop()
            raise RuntimeError(f"gunicorn did not start:\n{self.log_path.read_text(errors='replace')[-3000:]}")
        return self

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/api/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class CeleryWorker:
    """`celery -A <app> worker` as a subprocess group, with its log in a file."""

    def __init__(
        self,
        env: dict,
        log_path: Path,
        *,
        concurrency: int = 2,
        app: str = "app:celery_app",
        name: str = "test",
        queues: str = "analyses,control",
        pool: str = "prefork",
    ) -> None:
        self.env, self.log_path, self.concurrency, self.app, self.name = env, log_path, concurrency, app, name
        self.queues, self.pool = queues, pool
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> CeleryWorker:
        command = celery_worker_command(
            self.app, queues=self.queues, concurrency=self.concurrency, pool=self.pool, name=self.name
        )
        self.process = spawn(command, self.env, self.log_path)
        if not wait_until(lambda: b" ready." in self.log_path.read_bytes() or self.process.poll() is not None, timeout):
            raise RuntimeError(f"celery worker did not start:\n{self.tail()}")
        if self.process.poll() is not None:
            raise RuntimeError(f"celery worker exited:\n{self.tail()}")
        return self

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def kill_hard(self) -> None:
        """kill -9 the whole worker: main process and every child."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


class LiveServer:
    """The web app served by Werkzeug in a thread (Flask-Sock works there), on a free port."""

    def __init__(self, flask_app) -> None:
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, flask_app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


def submit(base_url: str, content: bytes, filename: str = "peaks.csv", **form) -> requests.Response:
    return requests.post(f"{base_url}/api/jobs", files={"file": (filename, content)}, data=form, timeout=60)


def wait_for_status(
    base_url: str, job_id: str, statuses=("succeeded", "failed", "cancelled"), timeout: float = 120
) -> dict:
    state: dict = {}

    def done() -> bool:
        nonlocal state
        state = requests.get(f"{base_url}/api/jobs/{job_id}", timeout=10).json()
        return state.get("status") in statuses

    if not wait_until(done, timeout, interval=0.2):
        raise AssertionError(f"job {job_id} stayed {state.get('status')}: {state}")
    return state


def read_stream(ws_url: str, job_id: str, timeout: float = 120, origin: str | None = None) -> list[dict]:
    """Messages of /ws/jobs/<id> until a terminal one; the client closes first, as browsers do."""
    connection = websocket.create_connection(f"{ws_url}/ws/jobs/{job_id}", timeout=timeout, origin=origin)
    messages = []
    try:
        while True:
            message = json.loads(connection.recv())
            messages.append(message)
            if message["type"] in ("complete", "error") or (
                message["type"] == "snapshot" and message["job"]["status"] in ("succeeded", "failed", "cancelled")
            ):
                return messages
    finally:
        connection.close()


@functools.lru_cache(maxsize=8)
def slow_job_input(rows: int = 80_000) -> bytes:
    """A generated extract large enough that its analysis takes several seconds (made once per
    size and test process: the same bytes every time)."""
    from analysis.synthetic import generate_extract

    return generate_extract(rows, seed=11).to_csv_bytes()


def pause(seconds: float) -> None:
    time.sleep(seconds)


def control(celery, command: str, *args, **kwargs):
    """A Celery control command, retried once: the pooled broker connection may predate a Redis restart."""
    try:
        return getattr(celery.control, command)(*args, **kwargs)
    except (redis.ConnectionError, ConnectionError, OSError):
        return getattr(celery.control, command)(*args, **kwargs)
