"""A job the upload page queues gets exactly what an API job gets, in both modes.

The Analyze callback calls `JobControl.submit_staged` (dashboard/pages/upload.py); these tests
make that same call on a real app and check the guarantees the job then runs with: the time
limit, cancel while queued and while running, and (embedded) the ceiling of `LOCAL_WORKERS`.
The browser tests (tests/e2e/test_page_jobs.py) click the button itself.
"""

from __future__ import annotations

import hashlib
import time

import pytest
from celery.exceptions import TimeLimitExceeded

from settings import Settings
from store.jobs import claim_job, create_job, get_job, stage_upload
from tests.services import process_alive, wait_until
from tests.stack import slow_job_input
from tests.worker.conftest import fresh_stack
from worker.runner import TIME_LIMIT_REASON

pytestmark = pytest.mark.slow


def queue_from_page(app, content: bytes, name: str = "slow.csv") -> str:
    found = app.server.extensions["rtcheck"]
    upload_id = stage_upload(found.db, filename=name, content=content, sha256=hashlib.sha256(content).hexdigest())
    return found.jobs.submit_staged(upload_id, parameters={}).job_id


def wait_for(db, job_id: str, statuses, timeout: float = 180):
    assert wait_until(lambda: get_job(db, job_id).status in statuses, timeout, interval=0.2), get_job(db, job_id).status
    return get_job(db, job_id)


@pytest.fixture
def embedded(tmp_path):
    from dashboard.factory import create_app

    def build(**overrides):
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'app.db'}",
            redis_url="",
            data_dir=tmp_path,
            app_env="test",
            auth_required=False,
            **{"local_workers": 2, **overrides},
        )
        app = create_app(settings, start_background=True)
        built.append(app)
        return app

    built = []
    yield build
    for app in built:
        app.server.extensions["rtcheck"].dispatcher.runner.shutdown()


def test_embedded_page_jobs_never_run_more_than_local_workers_at_once(embedded):
    app = embedded(local_workers=2)
    db = app.server.extensions["rtcheck"].db
    jobs = [queue_from_page(app, slow_job_input(30_000), f"f{i}.csv") for i in range(4)]
    most = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        statuses = [get_job(db, j).status for j in jobs]
        most = max(most, statuses.count("running"))
        if all(s == "succeeded" for s in statuses):
            break
        time.sleep(0.1)
    assert [get_job(db, j).status for j in jobs] == ["succeeded"] * 4
    assert most == 2  # both slots used, never a third


def test_embedded_page_job_over_the_time_limit_fails_with_that_reason(embedded):
    app = embedded(job_soft_time_limit=5, job_time_limit=10)
    db = app.server.extensions["rtcheck"].db
    job = wait_for(db, queue_from_page(app, slow_job_input(400_000)), ("failed", "succeeded"), timeout=120)
    assert (job.status, job.error) == ("failed", TIME_LIMIT_REASON)


def test_embedded_cancel_while_queued_and_while_running_stops_the_work(embedded):
    app = embedded(local_workers=1)
    found = app.server.extensions["rtcheck"]
    first = queue_from_page(app, slow_job_input(300_000))
    second = queue_from_page(app, slow_job_input(1_000))
    running = wait_for(found.db, first, ("running",))
    found.jobs.cancel(second)  # still waiting behind the first
    found.jobs.cancel(first)
    pid = int(running.worker.rsplit(":", 1)[1])
    assert wait_until(lambda: not process_alive(pid), 15)  # its process was stopped, not left computing
    time.sleep(2)
    assert get_job(found.db, second).status == "cancelled" and get_job(found.db, second).attempts == 0
    assert get_job(found.db, first).status == "cancelled"


def test_full_stack_page_job_over_the_time_limit_fails_with_that_reason(postgres_admin_url, private_redis, tmp_path):
    with fresh_stack(
        postgres_admin_url, private_redis.url, tmp_path, label="limit", job_soft_time_limit=5, job_time_limit=10
    ) as stack:
        job = wait_for(stack.db, queue_from_page(stack.app, slow_job_input(400_000)), ("failed", "succeeded"))
        assert (job.status, job.error) == ("failed", TIME_LIMIT_REASON)
        assert job.celery_task_id == str(job.id)  # it ran as the run_analysis task, like an API job


def test_a_hard_time_limit_fails_the_job_with_that_reason(full_stack):
    """Celery calls the task's failure hook in the worker's main process when it killed the
    analysis at the hard limit; the job then says why instead of waiting to be found stale."""
    from worker import context
    from worker.tasks import run_analysis

    context.configure(full_stack.settings)  # what a worker process of this stack reads its settings from
    db = full_stack.db
    job_id = create_job(db, filename="x.csv", content=b"x", sha256="0" * 64, parameters={}).job_id
    claim_job(db, job_id, worker="killed", stale_after_seconds=60)
    run_analysis.on_failure(TimeLimitExceeded(10), job_id, (job_id,), {}, None)
    job = get_job(db, job_id)
    assert (job.status, job.error) == ("failed", TIME_LIMIT_REASON)


def test_full_stack_cancel_while_queued_and_while_running(full_stack):
    found = full_stack.app.server.extensions["rtcheck"]
    jobs = [queue_from_page(full_stack.app, slow_job_input(300_000), f"f{i}.csv") for i in range(3)]
    running = [wait_for(found.db, j, ("running",)) for j in jobs[:2]]  # two worker slots
    assert get_job(found.db, jobs[2]).status == "queued"
    found.jobs.cancel(jobs[2])
    for job in running:
        found.jobs.cancel(job.id)
    for job_id in jobs:
        assert wait_for(found.db, job_id, ("cancelled",)).status == "cancelled"
    time.sleep(3)
    assert get_job(found.db, jobs[2]).attempts == 0  # the queued one never ran


def test_embedded_job_over_the_memory_ceiling_fails_once_with_that_reason(embedded):
    app = embedded(job_memory_mb=400)
    db = app.server.extensions["rtcheck"].db
    job = wait_for(db, queue_from_page(app, slow_job_input(250_000)), ("failed", "succeeded"), timeout=120)
    assert job.status == "failed" and "JOB_MEMORY_MB" in job.error and "400 MB" in job.error, job.error
    time.sleep(2)
    assert get_job(db, job.id).attempts == 1  # not run again
    small = wait_for(db, queue_from_page(app, slow_job_input(2_000)), ("failed", "succeeded"), timeout=60)
    assert small.status == "succeeded"  # the next job runs as usual


def test_full_stack_job_over_the_memory_ceiling_fails_once_and_is_not_delivered_again(
    postgres_admin_url, private_redis, tmp_path
):
    with fresh_stack(postgres_admin_url, private_redis.url, tmp_path, label="memory", job_memory_mb=400) as stack:
        job = wait_for(stack.db, queue_from_page(stack.app, slow_job_input(250_000)), ("failed", "succeeded"))
        assert job.status == "failed" and "JOB_MEMORY_MB" in job.error, job.error
        time.sleep(5)
        assert get_job(stack.db, job.id).attempts == 1
        small = wait_for(stack.db, queue_from_page(stack.app, slow_job_input(2_000)), ("failed", "succeeded"))
        assert small.status == "succeeded"  # the worker process that ran out goes on working
