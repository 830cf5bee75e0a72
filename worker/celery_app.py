"""The Celery application (full stack only): broker and results on Redis, our tasks, the beat schedule."""

from __future__ import annotations

import logging
import os
import socket

from celery import Celery, signals
from celery.schedules import crontab

from settings import Settings
from store.jobs import get_job
from worker.context import reset_after_fork, worker_context
from worker.runner import run_job

log = logging.getLogger(__name__)

RUN_ANALYSIS = "worker.tasks.run_analysis"
CLEANUP_OLD_JOBS = "worker.tasks.cleanup_old_jobs"
FAIL_STALE_JOBS = "worker.tasks.fail_stale_jobs"
NOTIFY_JOB_FINISHED = "worker.tasks.notify_job_finished"
QUEUE = "analyses"


def make_celery(settings: Settings) -> Celery:
    app = Celery("rtcheck", broker=settings.redis_url, backend=settings.redis_url)
    # Redis redelivers an unacknowledged task after the visibility timeout; it must be longer
    # than the hard time limit or a long job would be delivered twice while still running.
    visibility = settings.job_time_limit + 600
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_track_started=True,
        task_send_sent_event=True,
        worker_send_task_events=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": visibility},
        result_backend_transport_options={"visibility_timeout": visibility},
        result_expires=24 * 3600,
        beat_schedule={
            "fail-stale-jobs": {"task": FAIL_STALE_JOBS, "schedule": 60.0},
            "cleanup-old-jobs": {
                "task": CLEANUP_OLD_JOBS,
                "schedule": crontab(hour=3, minute=17),
                "args": (settings.retention_days,),
            },
        },
    )
    _register_tasks(app, settings)
    return app


def _register_tasks(app: Celery, settings: Settings) -> None:
    # A redelivered task that finds its job still "running" retries until the old heartbeat is
    # stale (then the job is reclaimed) or the job has finished (then there is nothing to do).
    retry_delay = max(settings.stale_job_seconds / 2, 1)
    max_retries = int(settings.job_time_limit / retry_delay) + 5

    @app.task(
        name=RUN_ANALYSIS,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        soft_time_limit=settings.job_soft_time_limit,
        time_limit=settings.job_time_limit,
    )
    def run_analysis(self, job_id: str) -> str:
        context = worker_context()
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
            if job is not None and job.status == "running":
                raise self.retry(countdown=retry_delay, max_retries=max_retries)
        if outcome in ("succeeded", "failed"):
            app.send_task(NOTIFY_JOB_FINISHED, args=[job_id])
        return outcome

    @app.task(name=CLEANUP_OLD_JOBS)
    def cleanup_old_jobs(days: float) -> int:
        from worker.maintenance import cleanup

        return cleanup(worker_context(), days)

    @app.task(name=FAIL_STALE_JOBS)
    def fail_stale_jobs() -> int:
        from worker.maintenance import fail_stale

        return fail_stale(worker_context())

    @app.task(name=NOTIFY_JOB_FINISHED, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
    def notify_job_finished(job_id: str) -> bool:
        from worker.notify import notify_job_finished as notify

        return notify(worker_context(), job_id)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@signals.worker_process_init.connect
def _fresh_connections_in_child(**_kwargs) -> None:
    # Prefork children must not share the parent's database sockets or Redis connections.
    reset_after_fork()
