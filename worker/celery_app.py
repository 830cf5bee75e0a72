"""The Celery application (full stack only): broker and results on Redis, our tasks, the beat schedule."""

from __future__ import annotations

import logging

from celery import Celery, signals
from celery.schedules import crontab

from settings import Settings
from worker.context import reset_after_fork
from worker.tasks import CLEANUP_OLD_JOBS, FAIL_STALE_JOBS, RUN_ANALYSIS

log = logging.getLogger(__name__)

QUEUE = "analyses"
# Dash's background callbacks (the Analyze button) are Celery tasks too. They only store and
# dispatch jobs, in milliseconds, and get a queue of their own so that a click is never
# waiting behind analyses for a free worker (docs/design-notes.md).
CALLBACK_QUEUE = "callbacks"


def make_celery(settings: Settings) -> Celery:
    app = Celery("rtcheck", broker=settings.redis_url, backend=settings.redis_url)
    # Redis redelivers an unacknowledged task after the visibility timeout; it must be longer
    # than the hard time limit or a long job would be delivered twice while still running.
    visibility = settings.job_time_limit + 600
    app.conf.update(
        task_default_queue=QUEUE,
        task_routes={"background_callback_*": {"queue": CALLBACK_QUEUE}},
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
