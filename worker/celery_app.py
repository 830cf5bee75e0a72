"""The Celery application (full stack only): broker and results on Redis, our tasks, the beat schedule."""

from __future__ import annotations

import logging

from celery import Celery, signals
from celery.schedules import crontab

from settings import Settings
from worker.context import reset_after_fork
from worker.tasks import CLEANUP_OLD_JOBS, FAIL_STALE_JOBS, RECONCILE_JOBS, RUN_ANALYSIS

log = logging.getLogger(__name__)

QUEUE = "analyses"
# Short tasks that must never wait behind analyses for a free worker (docs/design-notes.md):
# Dash's background callbacks (the Analyze button stores and dispatches jobs in milliseconds)
# and the periodic upkeep.
CONTROL_QUEUE = "control"


def make_celery(settings: Settings) -> Celery:
    app = Celery("rtcheck", broker=settings.redis_url, backend=settings.redis_url)
    # Redis redelivers an unacknowledged task after the visibility timeout; it must be longer
    # than the hard time limit or a long job would be delivered twice while still running.
    visibility = settings.job_time_limit + 600
    app.conf.update(
        task_default_queue=QUEUE,
        task_routes={
            "background_callback_*": {"queue": CONTROL_QUEUE},
            FAIL_STALE_JOBS: {"queue": CONTROL_QUEUE},
            CLEANUP_OLD_JOBS: {"queue": CONTROL_QUEUE},
            RECONCILE_JOBS: {"queue": CONTROL_QUEUE},
        },
        task_annotations={
            RUN_ANALYSIS: {"soft_time_limit": settings.job_soft_time_limit, "time_limit": settings.job_time_limit}
        },
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
            "reconcile-jobs": {"task": RECONCILE_JOBS, "schedule": 60.0},
            "cleanup-old-jobs": {
                "task": CLEANUP_OLD_JOBS,
                "schedule": crontab(hour=3, minute=17),
                "args": (settings.retention_days,),
            },
        },
    )
    import worker.tasks  # noqa: F401 - registers the shared tasks with this app

    return app


@signals.worker_process_init.connect
def _fresh_connections_in_child(**_kwargs) -> None:
    # Prefork children must not share the parent's database sockets or Redis connections.
    reset_after_fork()
