"""Periodic upkeep shared by Celery beat and the embedded timer: retention, lost workers, lost tasks."""

from __future__ import annotations

import logging

from store.jobs import cleanup_old_jobs, fail_stale_jobs, queued_jobs_older_than
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


def reconcile(context: WorkerContext, dispatcher, *, older_than_seconds: float = 60) -> int:
    """Send again every job that has been queued a while but whose task is nowhere in the broker.

    A queued job's task is waiting in the queue, or taken by a worker and not yet acknowledged
    (acks late); when Redis lost its data or a publish was lost, it is neither, and without
    this the job would wait for ever. Returns how many jobs were sent again.
    """
    known = dispatcher.task_ids_in_broker()
    if known is None:  # the broker cannot be read: nothing can be decided now
        return 0
    resent = 0
    for job_id, task_id in queued_jobs_older_than(context.db, older_than_seconds):
        if task_id in known:
            continue
        log.warning(
            "queued job has no task in the broker (task %s); sending it again", task_id, extra={"job_id": job_id}
        )
        dispatcher.resend(job_id)
        resent += 1
    return resent
