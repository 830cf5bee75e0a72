"""Sending stored jobs to whatever runs them: Celery workers, or the local pool in embedded mode."""

from __future__ import annotations

import logging

import redis
from sqlalchemy import update

from store.db import Database
from store.models import Job
from worker.celery_app import QUEUE, RUN_ANALYSIS

log = logging.getLogger(__name__)


def with_broker_retry(call, attempts: int = 2):
    """Run a broker call, once more on a connection error: a pooled connection may predate a
    Redis restart, and the retry takes a fresh one."""
    for attempt in range(attempts):
        try:
            return call()
        except (redis.ConnectionError, ConnectionError, OSError):
            if attempt == attempts - 1:
                raise


class CeleryDispatcher:
    """Full stack: each job is a `run_analysis` task; workers on any machine take them."""

    mode = "full"

    def __init__(self, celery_app, db: Database, redis_url: str) -> None:
        self.celery = celery_app
        self.db = db
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)

    def submit(self, job_id: str, attempt: int = 0) -> str:
        """Enqueue the job (already committed as queued); the first task id is the job id."""
        task_id = job_id if attempt == 0 else f"{job_id}-retry{attempt}"
        with self.db.transaction() as session:
            session.execute(update(Job).where(Job.id == job_id).values(celery_task_id=task_id))
        self.celery.send_task(RUN_ANALYSIS, args=[job_id], task_id=task_id, queue=QUEUE)
        return task_id

    def cancel(self, task_id: str | None, running: bool) -> None:
        if not task_id:
            return
        # A queued task is discarded when a worker takes it; a running one is interrupted. If the
        # broker cannot be told, the job is cancelled all the same: the runner checks the stored
        # status at every step and stops, and a worker that takes the task finds nothing to do.
        try:
            with_broker_retry(lambda: self.celery.control.revoke(task_id, terminate=running, signal="SIGTERM"))
        except Exception as exc:
            log.warning("could not tell the workers to revoke task %s: %s", task_id, exc)

    def queue_depth(self) -> int | None:
        try:
            return int(self.redis.llen(QUEUE))
        except redis.RedisError:
            return None

    def workers(self) -> list[str] | None:
        try:
            replies = self.celery.control.ping(timeout=1.0)
        except Exception:
            return None
        return sorted(name for reply in replies for name in reply)

    def redis_ok(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False


class LocalDispatcher:
    """Embedded mode: the web process's own pool of analysis processes."""

    mode = "embedded"

    def __init__(self, runner) -> None:
        self.runner = runner

    def submit(self, job_id: str, attempt: int = 0) -> str:
        self.runner.submit(job_id)
        return job_id

    def cancel(self, task_id: str | None, running: bool) -> None:
        # The runner notices the cancelled status at its next progress step and stops.
        return None

    def queue_depth(self) -> int:
        return max(self.runner.busy - self.runner.settings.local_workers, 0)

    def workers(self) -> list[str]:
        return [f"local pool ({self.runner.settings.local_workers} processes)"]

    def redis_ok(self) -> bool | None:
        return None
