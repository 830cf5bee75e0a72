"""The Celery tasks (full stack). Each reads the settings from the process's worker context."""

from __future__ import annotations

import contextlib
import os
import socket

from celery import Task, shared_task
from celery.exceptions import TimeLimitExceeded

from store.jobs import TransitionError, fail_job, get_job
from store.models import JobStatus
from worker.context import worker_context
from worker.limits import memory_limit
from worker.runner import TIME_LIMIT_REASON, run_job

RUN_ANALYSIS = "worker.tasks.run_analysis"
CLEANUP_OLD_JOBS = "worker.tasks.cleanup_old_jobs"
FAIL_STALE_JOBS = "worker.tasks.fail_stale_jobs"
NOTIFY_JOB_FINISHED = "worker.tasks.notify_job_finished"
RECONCILE_JOBS = "worker.tasks.reconcile_jobs"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def redelivery_policy(stale_job_seconds: float, job_time_limit: float) -> tuple[float, int]:
    """Delay and count of retries for a redelivered task that finds its job still "running":
    it waits until the old heartbeat is stale (then the job is reclaimed) or the job has ended."""
    delay = max(stale_job_seconds / 2, 1)
    return delay, int(job_time_limit / delay) + 5


class AnalysisTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        """Celery calls this in the worker's main process when the hard time limit killed the
        analysis process; the job is failed with that reason, not left for the stale-job check."""
        if isinstance(exc, TimeLimitExceeded) and args:
            context = worker_context()
            with contextlib.suppress(TransitionError):  # it ended another way meanwhile
                context.publisher.publish(fail_job(context.db, args[0], TIME_LIMIT_REASON))


# Time limits come from the settings through the app's task annotations (worker.celery_app).
@shared_task(name=RUN_ANALYSIS, base=AnalysisTask, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_analysis(self, job_id: str) -> str:
    context = worker_context()
    settings = context.settings
    with memory_limit(settings.job_memory_mb):
        outcome = run_job(
            context.db,
            job_id,
            publisher=context.publisher,
            worker=worker_name(),
            task_id=self.request.id,
            stale_after_seconds=settings.stale_job_seconds,
            heartbeat_seconds=settings.heartbeat_seconds,
        )
    if outcome == "skipped":
        job = get_job(context.db, job_id)
        if job is not None and job.status == JobStatus.RUNNING:
            delay, retries = redelivery_policy(settings.stale_job_seconds, settings.job_time_limit)
            raise self.retry(countdown=delay, max_retries=retries)
    if outcome in ("succeeded", "failed"):
        notify_job_finished.delay(job_id)
    return outcome


@shared_task(name=CLEANUP_OLD_JOBS)
def cleanup_old_jobs(days: float) -> int:
    from worker.maintenance import cleanup

    return cleanup(worker_context(), days)


@shared_task(name=FAIL_STALE_JOBS)
def fail_stale_jobs() -> int:
    from worker.maintenance import fail_stale

    return fail_stale(worker_context())


@shared_task(name=RECONCILE_JOBS, bind=True)
def reconcile_jobs(self, older_than_seconds: float = 60) -> int:
    from worker.dispatch import CeleryDispatcher
    from worker.maintenance import reconcile

    context = worker_context()
    dispatcher = CeleryDispatcher(self.app, context.db, context.settings.redis_url)
    return reconcile(context, dispatcher, older_than_seconds=older_than_seconds)


@shared_task(name=NOTIFY_JOB_FINISHED, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def notify_job_finished(job_id: str) -> bool:
    from worker.notify import notify_job_finished as notify

    return notify(worker_context(), job_id)
