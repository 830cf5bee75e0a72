"""Scale-out: two worker hosts on one Redis queue and one PostgreSQL database.

Each host is a separate `celery worker` started with its own settings (its own DATA_DIR and
LOG_FORMAT), one analysis at a time, as a second machine would run it (docs/operations.md,
"A second machine that only runs workers"). Jobs spread over both hosts and run exactly once,
and a host that is stopped or killed in the middle of a job loses none of them.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import re
import signal
import socket

import pytest
import requests

from store.jobs import events_after, get_job
from tests.services import wait_until
from tests.stack import CeleryWorker, slow_job_input, stack_env, submit, wait_for_status
from tests.worker.conftest import Stack, fresh_stack
from worker.tasks import FAIL_STALE_JOBS

pytestmark = pytest.mark.slow

ROWS = 25_000  # about two seconds of analysis per job on a small machine
BATCH = 6
STALE_JOB_SECONDS = 10
TEXT_STARTED = re.compile(r"job started on \S+ \(attempt \d+\) \[job (?P<job>[0-9a-f-]{36})\]$")


@dataclasses.dataclass
class Host:
    """One worker machine: a `celery worker` main process and its pool process."""

    name: str
    worker: CeleryWorker
    log_format: str
    pids: set[int] = dataclasses.field(default_factory=set)

    def alive(self) -> bool:
        return self.worker.process is not None and self.worker.process.poll() is None

    def refresh(self) -> None:
        """Remember the pool processes: a job's `worker` field names the one that ran it."""
        if self.alive():
            self.pids.update(self.worker.children())

    def log_lines(self) -> list[str]:
        return self.worker.log_path.read_text(errors="replace").splitlines()

    def started(self) -> list[str]:
        """Ids of the jobs this host started, one entry per start, read in the log format it was given."""
        if self.log_format == "json":
            records = [json.loads(line) for line in self.log_lines() if line.startswith("{")]
            return [r["job_id"] for r in records if r.get("message", "").startswith("job started on")]
        return [match["job"] for line in self.log_lines() if (match := TEXT_STARTED.search(line))]


def start_host(stack: Stack, name: str, **own_settings) -> Host:
    env = stack_env({**stack.values, **own_settings})
    worker = CeleryWorker(env, stack.tmp / f"{name}.log", concurrency=1, app="app:celery_app", name=name)
    stack.workers.append(worker)  # teardown_stack stops it whatever happens here
    worker.start()
    host = Host(name, worker, own_settings["log_format"])
    host.refresh()
    assert len(host.pids) == 1, f"{name}: expected one pool process, found {host.pids}"
    return host


def host_of(stack: Stack, hosts: list[Host], job_id: str) -> Host | None:
    """The host whose pool process runs (or last ran) the job, from its `worker` field hostname:pid."""
    job = get_job(stack.db, job_id)
    if not job.worker:
        return None
    hostname, pid = job.worker.rsplit(":", 1)
    assert hostname == socket.gethostname(), job.worker
    if not any(int(pid) in host.pids for host in hosts):
        for host in hosts:
            host.refresh()
    owners = [host for host in hosts if int(pid) in host.pids]
    assert len(owners) == 1, f"pid {pid} of job {job_id} belongs to {[host.name for host in owners]}"
    return owners[0]


@pytest.fixture(scope="module")
def job_input() -> bytes:
    return slow_job_input(ROWS)


@pytest.fixture
def cluster(postgres_admin_url, private_redis, tmp_path):
    """A web server without workers, and two worker hosts; all share one Redis and one database."""
    with fresh_stack(
        postgres_admin_url,
        private_redis.url,
        tmp_path,
        label="scale",
        with_worker=False,
        data_dir=str(tmp_path / "web"),
        stale_job_seconds=STALE_JOB_SECONDS,
    ) as stack:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            a = pool.submit(start_host, stack, "host-a", data_dir=tmp_path / "host-a", log_format="text")
            b = pool.submit(start_host, stack, "host-b", data_dir=tmp_path / "host-b", log_format="json")
            hosts = [a.result(), b.result()]
        yield stack, hosts


def submit_batch(stack: Stack, data: bytes, label: str, count: int = BATCH) -> list[str]:
    ids = []
    for number in range(count):
        response = submit(stack.live.url, data, f"{label}-{number}.csv")
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def wait_all(stack: Stack, ids: list[str], timeout: float = 90) -> dict[str, dict]:
    """The final API state of every job; fails on any job that stays queued or running."""
    return {job_id: wait_for_status(stack.live.url, job_id, timeout=timeout) for job_id in ids}


def statuses(states: dict[str, dict]) -> dict[str, str]:
    return {job_id: state["status"] for job_id, state in states.items()}


def running_on(stack: Stack, hosts: list[Host], host: Host, ids: list[str]) -> str:
    """Wait until `host` is in the middle of one of these jobs (well before saving); return its id."""
    found: list[str] = []

    def busy() -> bool:
        for job_id in ids:
            job = get_job(stack.db, job_id)
            if job.status == "running" and job.progress_percent < 50 and host_of(stack, hosts, job_id) is host:
                found.append(job_id)
                return True
        return False

    assert wait_until(busy, 60, interval=0.05), f"{host.name} never ran a job:\n{host.worker.tail()}"
    return found[0]


def finished(stack: Stack, ids: list[str]) -> set[str]:
    return {job_id for job_id in ids if get_job(stack.db, job_id).status == "succeeded"}


def test_jobs_spread_over_both_hosts_and_each_runs_once(cluster, job_input):
    stack, hosts = cluster
    a, b = hosts
    ids = submit_batch(stack, job_input, "spread")
    states = wait_all(stack, ids)

    assert statuses(states) == dict.fromkeys(ids, "succeeded")
    assert {job_id: state["attempts"] for job_id, state in states.items()} == dict.fromkeys(ids, 1)
    ran_on = {job_id: host_of(stack, hosts, job_id) for job_id in ids}
    by_host = {host.name: sorted(job_id for job_id in ids if ran_on[job_id] is host) for host in hosts}
    assert by_host["host-a"] and by_host["host-b"], f"one host ran every job: {by_host}"

    # Exactly one start per job in the whole cluster, each logged by the host that ran it in that
    # host's own format (host-a text, host-b JSON lines): each worker read its own settings.
    assert sorted(a.started()) == by_host["host-a"]
    assert sorted(b.started()) == by_host["host-b"]
    assert not any(line.startswith("{") for line in a.log_lines())
    assert not any(TEXT_STARTED.search(line) for line in b.log_lines())
    # No task was delivered a second time (a duplicate would log "job not claimed").
    assert not any("job not claimed" in line for host in hosts for line in host.log_lines())
    for job_id in ids:
        starts = [e for e in events_after(stack.db, job_id, 0) if e.status == "running" and e.step == "starting"]
        assert len(starts) == 1, starts


def sigterm_main_process(host: Host) -> None:
    """Celery's warm shutdown as systemd (KillMode=mixed) and Docker (init: true) deliver it:
    SIGTERM to the main process only; it stops taking tasks, lets the running one finish, exits."""
    os.kill(host.worker.process.pid, signal.SIGTERM)
    assert wait_until(lambda: not host.alive(), 60), host.worker.tail()
    assert host.worker.process.returncode == 0, host.worker.tail()
    host.worker.stop()  # closes its log


def sigterm_every_process(host: Host) -> None:
    """SIGTERM to the main process and its pool process alike (CeleryWorker.stop: the process group)."""
    host.worker.stop()
    assert not host.alive()


@pytest.mark.parametrize(
    "stop, finishes_in_place",
    [(sigterm_main_process, True), (sigterm_every_process, False)],
    ids=["sigterm-main-process", "sigterm-process-group"],
)
def test_a_host_stopped_mid_job_loses_nothing(cluster, job_input, stop, finishes_in_place):
    stack, hosts = cluster
    leaving, staying = hosts
    ids = submit_batch(stack, job_input, "stop")
    in_flight = running_on(stack, hosts, leaving, ids)
    done_before = finished(stack, ids)
    stop(leaving)

    states = wait_all(stack, ids)
    not_succeeded = {
        job_id: (state["status"], state["error"], state["attempts"])
        for job_id, state in states.items()
        if state["status"] != "succeeded"
    }
    assert statuses(states) == dict.fromkeys(ids, "succeeded"), not_succeeded
    if finishes_in_place:
        # The warm shutdown let the analysis in flight finish where it was, once.
        assert host_of(stack, hosts, in_flight) is leaving
        assert states[in_flight]["attempts"] == 1
        assert leaving.started().count(in_flight) == 1
        assert in_flight not in staying.started()
    else:
        # The pool process died with the analysis: the task went back to the queue (acks_late,
        # reject_on_worker_lost) and the other host reclaimed the job once its heartbeat went stale.
        assert host_of(stack, hosts, in_flight) is staying
        assert states[in_flight]["attempts"] == 2
        assert leaving.started().count(in_flight) == staying.started().count(in_flight) == 1
    # Everything not finished by the time of the stop ran on the remaining host, exactly once.
    for job_id in set(ids) - done_before - {in_flight}:
        assert host_of(stack, hosts, job_id) is staying, job_id
        assert states[job_id]["attempts"] == 1
        assert staying.started().count(job_id) == 1
        assert job_id not in leaving.started()


def test_a_host_killed_mid_job_loses_nothing(cluster, job_input):
    stack, hosts = cluster
    dying, staying = hosts
    ids = submit_batch(stack, job_input, "kill")
    in_flight = running_on(stack, hosts, dying, ids)
    done_before = finished(stack, ids)
    dying.worker.kill_hard()  # SIGKILL to every process of the host, as if the machine died

    # With the whole host gone, nothing reports the lost task until the job's heartbeat goes stale;
    # the periodic stale-job check (beat, every minute; sent by hand here) then fails it.
    def settled() -> bool:
        if get_job(stack.db, in_flight).status == "running":
            stack.celery.send_task(FAIL_STALE_JOBS).get(timeout=60)
        return get_job(stack.db, in_flight).status != "running"

    assert wait_until(settled, STALE_JOB_SECONDS + 60, interval=2), "the job stayed running after its host died"
    job = get_job(stack.db, in_flight)
    if job.status == "failed":
        assert job.error == "worker lost"
        retried = requests.post(f"{stack.live.url}/api/jobs/{in_flight}/retry", timeout=10)
        assert retried.status_code == 202, retried.text
    else:
        assert job.status == "succeeded", job.status  # the task came back and ran again on its own

    states = wait_all(stack, ids)
    assert statuses(states) == dict.fromkeys(ids, "succeeded"), {i: s["error"] for i, s in states.items()}
    assert host_of(stack, hosts, in_flight) is staying
    assert states[in_flight]["attempts"] == 2
    assert dying.started().count(in_flight) == staying.started().count(in_flight) == 1
    for job_id in set(ids) - done_before - {in_flight}:
        assert host_of(stack, hosts, job_id) is staying, job_id
        assert states[job_id]["attempts"] == 1
        assert staying.started().count(job_id) == 1
