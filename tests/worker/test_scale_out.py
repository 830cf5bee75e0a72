"""Scale-out: two worker hosts on one Redis queue and one PostgreSQL database.

Each host is a separate `celery worker` started with its own settings (its own DATA_DIR and
LOG_FORMAT), one analysis at a time. Jobs spread over both hosts and run exactly once, and a
host that is stopped or killed in the middle of a job loses none of them.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import uuid

import pytest
import redis
import requests

from store.jobs import get_job
from tests import services
from tests.services import wait_until
from tests.stack import CeleryWorker, slow_job_input, stack_env, submit, wait_for_status
from tests.worker.conftest import Stack, build_stack, teardown_stack
from worker.celery_app import FAIL_STALE_JOBS

pytestmark = pytest.mark.slow

ROWS = 40_000  # about two seconds of analysis per job
BATCH = 6
TERMINAL = ("succeeded", "failed", "cancelled")


@dataclasses.dataclass
class Host:
    """One worker machine: a `celery worker` main process and its pool processes."""

    name: str
    worker: CeleryWorker
    pids: set[int] = dataclasses.field(default_factory=set)

    def alive(self) -> bool:
        return self.worker.process is not None and self.worker.process.poll() is None

    def refresh(self) -> None:
        """Remember the pool processes: a job's `worker` field names the one that ran it."""
        if self.alive():
            self.pids.update(self.worker.children())


def start_host(stack: Stack, name: str, **own_settings) -> Host:
    env = stack_env({**stack.values, **own_settings})
    worker = CeleryWorker(env, stack.tmp / f"{name}.log", concurrency=1, app="app:celery_app", name=name)
    stack.workers.append(worker)  # stopped by teardown_stack whatever happens here
    worker.start()
    host = Host(name, worker)
    host.refresh()
    assert len(host.pids) == 1, f"{name}: expected one pool process, found {host.pids}"
    return host


def host_of(hosts: list[Host], stack: Stack, job_id: str) -> Host | None:
    """The host whose pool process the job is (or was last) running on."""
    job = get_job(stack.db, job_id)
    if not job.worker:
        return None
    hostname, pid = job.worker.rsplit(":", 1)
    assert hostname == socket.gethostname()
    for host in hosts:
        host.refresh()
    owners = [host for host in hosts if int(pid) in host.pids]
    assert len(owners) == 1, f"pid {pid} of job {job_id} belongs to {[h.name for h in owners]}"
    return owners[0]


@pytest.fixture(scope="module")
def job_input() -> bytes:
    return slow_job_input(ROWS)


@pytest.fixture
def cluster(postgres_admin_url, private_redis, tmp_path):
    """A web server and two worker hosts sharing one Redis and one PostgreSQL database."""
    name = f"rtcheck_scale_{uuid.uuid4().hex[:10]}"
    url = services.create_database(postgres_admin_url, name)
    redis.Redis.from_url(private_redis.url).flushall()
    values = {
        "database_url": url,
        "redis_url": private_redis.url,
        "secret_key": "s" * 40,
        "app_env": "test",
        "data_dir": str(tmp_path / "web"),
        "stale_job_seconds": 10,
        "heartbeat_seconds": 1,
        "job_soft_time_limit": 300,
        "job_time_limit": 360,
    }
    stack = build_stack(values, tmp_path, with_worker=False)
    try:
        hosts = [
            start_host(stack, "host-a", data_dir=tmp_path / "host-a", log_format="text"),
            start_host(stack, "host-b", data_dir=tmp_path / "host-b", log_format="json"),
        ]
        yield stack, hosts
    finally:
        teardown_stack(stack)
        services.drop_database(postgres_admin_url, name)


def submit_batch(stack: Stack, data: bytes, label: str, count: int = BATCH) -> list[str]:
    ids = []
    for number in range(count):
        response = submit(stack.live.url, data, f"{label}-{number}.csv")
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def wait_all(stack: Stack, ids: list[str], timeout: float = 90) -> dict[str, dict]:
    return {job_id: wait_for_status(stack.live.url, job_id, timeout=timeout) for job_id in ids}


def running_on(stack: Stack, hosts: list[Host], host: Host, ids: list[str]) -> str:
    """Wait until `host` is in the middle of one of these jobs; return that job's id."""
    found: list[str] = []

    def busy() -> bool:
        for job_id in ids:
            job = get_job(stack.db, job_id)
            if job.status == "running" and job.progress_percent > 0 and host_of(hosts, stack, job_id) is host:
                found.append(job_id)
                return True
        return False

    assert wait_until(busy, 60, interval=0.1), f"{host.name} never ran a job:\n{host.worker.tail()}"
    return found[0]


def log_lines(host: Host) -> list[str]:
    return host.worker.log_path.read_text(errors="replace").splitlines()


def test_jobs_spread_over_both_hosts_and_each_runs_once(cluster, job_input):
    stack, hosts = cluster
    import time
    t=time.time()
    ids = submit_batch(stack, job_input, "spread")
    print("submit", time.time()-t)
    states = wait_all(stack, ids)
    print("all", time.time()-t)
    for s in states.values(): print(s["duration_seconds"], s["created_at"], s["started_at"], s["finished_at"])

    assert {job_id: state["status"] for job_id, state in states.items()} == dict.fromkeys(ids, "succeeded")
    assert all(state["attempts"] == 1 for state in states.values()), states
    ran_on = {job_id: host_of(hosts, stack, job_id) for job_id in ids}
    by_host = {host.name: [job_id for job_id in ids if ran_on[job_id] is host] for host in hosts}
    assert all(by_host.values()), f"one host ran every job: {by_host}"

    # Each host ran with its own settings: host-a logs readable text, host-b JSON lines.
    a, b = hosts
    for job_id in by_host["host-a"]:
        assert any(line.endswith(f"[job {job_id}]") and "job started on" in line for line in log_lines(a))
    records = [json.loads(line) for line in log_lines(b) if line.startswith("{")]
    for job_id in by_host["host-b"]:
        assert any(r.get("job_id") == job_id and r["message"].startswith("job started on") for r in records)
    assert not any(r.get("job_id") in by_host["host-a"] for r in records)


def test_a_host_stopped_mid_job_finishes_it_and_loses_nothing(cluster, job_input):
    stack, hosts = cluster
    leaving, staying = hosts
    ids = submit_batch(stack, job_input, "stop")
    in_flight = running_on(stack, hosts, leaving, ids)
    leaving.worker.stop()  # SIGTERM: Celery's warm shutdown
    print("exit code", leaving.worker.process.returncode)
    states = wait_all(stack, ids)
    for job_id, state in states.items():
        print(job_id == in_flight, state["status"], state["attempts"], host_of(hosts, stack, job_id).name)
    print(leaving.worker.tail(30))
    assert {job_id: state["status"] for job_id, state in states.items()} == dict.fromkeys(ids, "succeeded")
