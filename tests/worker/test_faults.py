"""Faults in the real stack: killed workers, a Redis restart, cancellations. Jobs never stay running."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading

import pytest
import redis
import requests
import websocket
from sqlalchemy import func, select, update

from store.jobs import claim_job, events_after, get_job
from store.models import Job, ResultRow, utcnow
from tests.services import wait_until
from tests.stack import control, pause, read_stream, slow_job_input, submit, wait_for_status
from tests.worker.conftest import fresh_stack
from worker.tasks import FAIL_STALE_JOBS

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(postgres_admin_url, private_redis, tmp_path):
    with fresh_stack(postgres_admin_url, private_redis.url, tmp_path, label="fault") as built:
        yield built


def running_worker_pid(stack, job_id: str) -> int:
    assert wait_for_status(stack.live.url, job_id, statuses=("running",), timeout=60)
    job = get_job(stack.db, job_id)
    return int(job.worker.rsplit(":", 1)[1])


def test_a_killed_worker_process_is_redelivered_and_the_job_completes(stack):
    job_id = submit(stack.live.url, slow_job_input(), "slow.csv").json()["id"]
    child = running_worker_pid(stack, job_id)
    assert child in stack.workers[0].children()
    os.kill(child, signal.SIGKILL)  # the pool process running the analysis dies mid-job
    state = wait_for_status(stack.live.url, job_id, timeout=180)
    assert state["status"] == "succeeded", stack.workers[0].tail()
    job = get_job(stack.db, job_id)
    assert job.attempts == 2
    assert int(job.worker.rsplit(":", 1)[1]) != child


def test_a_killed_worker_host_leaves_the_job_failed_as_worker_lost_then_retry_works(stack):
    job_id = submit(stack.live.url, slow_job_input(), "slow.csv").json()["id"]
    running_worker_pid(stack, job_id)
    stack.workers[0].kill_hard()  # every process of the worker, as if the machine died
    stack.start_worker(name="replacement")
    # The stale-job check (beat runs it every minute) fails the job once its heartbeat is stale.
    assert wait_until(lambda: get_job(stack.db, job_id).heartbeat_at is not None, 5)

    def failed_as_lost() -> bool:
        stack.celery.send_task(FAIL_STALE_JOBS).get(timeout=30)
        return get_job(stack.db, job_id).status == "failed"

    assert wait_until(failed_as_lost, 60, interval=3)
    job = get_job(stack.db, job_id)
    assert job.error == "worker lost"
    assert read_stream(stack.live.ws_url, job_id)[-1]["job"]["status"] == "failed"
    retried = requests.post(f"{stack.live.url}/api/jobs/{job_id}/retry", timeout=10)
    assert retried.status_code == 202
    assert wait_for_status(stack.live.url, job_id, timeout=180)["status"] == "succeeded"


def test_a_redis_restart_during_a_job_still_ends_in_a_terminal_state(stack, private_redis):
    job_id = submit(stack.live.url, slow_job_input(), "slow.csv").json()["id"]
    live = websocket.create_connection(f"{stack.live.ws_url}/ws/jobs/{job_id}", timeout=240)
    assert json.loads(live.recv())["type"] == "snapshot"
    # Read the socket all along, as a browser does: reading is also what answers the server's
    # pings, and a client that stops answering is rightly dropped.
    messages: list[dict] = []

    def listen() -> None:
        while True:
            message = json.loads(live.recv())
            messages.append(message)
            if message["type"] in ("complete", "error"):
                return

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    running_worker_pid(stack, job_id)
    private_redis.stop()
    private_redis.start()
    state = wait_for_status(stack.live.url, job_id, timeout=240)
    assert state["status"] == "succeeded", stack.workers[0].tail()
    # The socket that stayed open hears the end (its server caught up from the stored events) ...
    reader.join(timeout=60)
    live.close()
    assert messages and messages[-1]["type"] == "complete"
    assert messages[-1]["status"] == "succeeded"
    # ... and a client that reconnects gets the final snapshot.
    reconnected = read_stream(stack.live.ws_url, job_id)
    assert reconnected[0]["job"]["status"] == "succeeded"
    assert reconnected[0]["job"]["seq"] == events_after(stack.db, job_id, 0)[-1].seq


def test_cancel_a_queued_job_and_a_running_job(stack, porcine_csv):
    base = stack.live.url
    control(stack.celery, "cancel_consumer", "analyses", reply=True)
    queued = submit(base, porcine_csv.read_bytes()).json()["id"]
    response = requests.post(f"{base}/api/jobs/{queued}/cancel", timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    control(stack.celery, "add_consumer", "analyses", reply=True)

    running = submit(base, slow_job_input(), "slow.csv").json()["id"]
    running_worker_pid(stack, running)
    assert requests.post(f"{base}/api/jobs/{running}/cancel", timeout=10).json()["status"] == "cancelled"
    assert requests.post(f"{base}/api/jobs/{running}/cancel", timeout=10).status_code == 409
    # The worker carries on with new work, and neither cancelled job ever gets results.
    after = submit(base, porcine_csv.read_bytes()).json()["id"]
    assert wait_for_status(base, after)["status"] == "succeeded"
    for job_id in (queued, running):
        assert get_job(stack.db, job_id).status == "cancelled"
        assert requests.get(f"{base}/api/jobs/{job_id}/results", timeout=10).status_code == 409
    # A cancelled job can be retried.
    assert requests.post(f"{base}/api/jobs/{queued}/retry", timeout=10).status_code == 202
    assert wait_for_status(base, queued)["status"] == "succeeded"


def test_a_queued_job_whose_task_redis_lost_runs_after_reconciliation(postgres_admin_url, private_redis, tmp_path):
    from worker.tasks import RECONCILE_JOBS

    with fresh_stack(postgres_admin_url, private_redis.url, tmp_path, label="reconcile", with_worker=False) as stack:
        job_id = submit(stack.live.url, slow_job_input(2_000), "lost.csv").json()["id"]
        dispatcher = stack.app.server.extensions["rtcheck"].dispatcher
        assert job_id in dispatcher.task_ids_in_broker()
        redis.Redis.from_url(stack.settings.redis_url).flushdb()  # Redis loses its data, task and all
        stack.start_worker(name="after-loss")
        pause(3)
        assert get_job(stack.db, job_id).status == "queued"  # nothing knows of it any more
        assert stack.celery.send_task(RECONCILE_JOBS, kwargs={"older_than_seconds": 0}).get(timeout=30) == 1
        assert wait_for_status(stack.live.url, job_id, timeout=120)["status"] == "succeeded"
        assert stack.celery.send_task(RECONCILE_JOBS, kwargs={"older_than_seconds": 0}).get(timeout=30) == 0


def test_a_database_outage_of_twenty_seconds_mid_job_is_ridden_out_and_the_result_saved_once(
    private_postgres, private_redis, tmp_path
):
    server = private_postgres
    with fresh_stack(server.url, private_redis.url, tmp_path, label="outage", stale_job_seconds=60) as stack:
        content = slow_job_input(40_000)
        job_id = submit(stack.live.url, content, "outage.csv").json()["id"]
        assert wait_for_status(stack.live.url, job_id, statuses=("running",), timeout=60)
        server.stop()  # fast shutdown: every connection is cut
        pause(20)
        server.start()
        state = wait_for_status(stack.live.url, job_id, timeout=180)
        log = stack.workers[0].tail(400)
        assert state["status"] == "succeeded", log
        assert "database unreachable" in log  # the outage did fall inside the job
        job = get_job(stack.db, job_id)
        assert job.attempts == 1
        events = events_after(stack.db, job_id, 0)
        assert [e.status for e in events].count("succeeded") == 1
        with stack.db.session() as session:
            stored = session.execute(select(func.count()).select_from(ResultRow).where(ResultRow.job_id == job.id))
            assert stored.scalar_one() == 40_000


def test_with_every_analysis_worker_busy_a_dead_job_is_still_failed(postgres_admin_url, private_redis, tmp_path):
    """The stale-job check runs on the control queue, so it never waits behind analyses."""
    with fresh_stack(postgres_admin_url, private_redis.url, tmp_path, label="busy", with_worker=False) as stack:
        stack.start_worker(1, name="analyses", queues="analyses")
        stack.start_worker(2, name="control", queues="control", pool="threads")
        content = slow_job_input()
        busy = [submit(stack.live.url, content, f"busy{i}.csv").json()["id"] for i in range(2)]
        assert wait_for_status(stack.live.url, busy[0], statuses=("running",), timeout=60)
        dead = submit(stack.live.url, slow_job_input(2_000), "dead.csv").json()["id"]
        claim_job(stack.db, dead, worker="gone:1", stale_after_seconds=60)  # its worker then died
        with stack.db.transaction() as session:
            old = utcnow() - dt.timedelta(seconds=stack.settings.stale_job_seconds + 1)
            session.execute(update(Job).where(Job.id == get_job(stack.db, dead).id).values(heartbeat_at=old))
        assert stack.celery.send_task(FAIL_STALE_JOBS).get(timeout=30) == 1  # as beat sends it
        failed = get_job(stack.db, dead)
        assert failed.status == "failed" and "worker lost" in failed.error
        assert [get_job(stack.db, job).status for job in busy] == ["running", "queued"]  # still busy
