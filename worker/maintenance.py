"""Periodic upkeep shared by Celery beat and the embedded timer: retention and lost workers."""

from __future__ import annotations

import logging

from store.jobs import cleanup_old_jobs, fail_stale_jobs
from worker.context import WorkerContext

log = logging.getLogger(__name__)


def cleanup(context: WorkerContext, days: float) -> int:
    removed = cleanup_old_jobs(context.db, older_than_days=days)
    if removed:
        log.info("deleted %d finished jobs older than %g days", removed, days)
    return removed


def fail_stale(context: WorkerContext) -> int:
    events = fail_stale_jobs(context.db, stale_after_seconds=context.settings.stale_job_seconds)
    for event in events:
        context.publisher.publish(event)
        log.warning("job failed as worker lost", extra={"job_id": event.job_id})
    return len(events)
