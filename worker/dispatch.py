"""Sending stored jobs to whatever runs them: Celery workers, or the local pool in embedded mode."""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING

import redis
from sqlalchemy import update

from store.db import Database
from store.models import Job
from worker.celery_app import QUEUE
from worker.tasks import RUN_ANALYSIS

if TYPE_CHECKING:
    from worker.local import LocalRunner

log = logging.getLogger(__name__)

# kombu's publish retry: a pooled connection may predate a Redis restart; a second attempt
# takes a fresh one. Short, because a person or a script is waiting for the answer.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


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
        self.celery.send_task(
            RUN_ANALYSIS, args=[job_id], task_id=task_id, queue=QUEUE, retry=True, retry_policy=PUBLISH_RETRY
        )
        return task_id

    def resend(self, job_id: str) -> str:
        """A new task for a queued job whose task was lost (worker/maintenance.py, reconcile)."""
        task_id = f"{job_id}-resent-{uuid.uuid4().hex[:8]}"
        with self.db.transaction() as session:
            session.execute(update(Job).where(Job.id == job_id).values(celery_task_id=task_id))
        self.celery.send_task(
            RUN_ANALYSIS, args=[job_id], task_id=task_id, queue=QUEUE, retry=True, retry_policy=PUBLISH_RETRY
        )
        return task_id

    def task_ids_in_broker(self) -> set[str] | None:
        """Ids of the analysis tasks Redis holds: waiting in the queue, or delivered to a worker
        and not yet acknowledged (kombu keeps those in its "unacked" hash). None if unreadable."""
        try:
            waiting = self.redis.lrange(QUEUE, 0, -1)
            taken = self.redis.hvals("unacked")
        except redis.RedisError:
            return None
        ids = set()
        for raw in waiting:
            ids.add(_task_id(json.loads(raw)))
        for raw in taken:
            ids.add(_task_id(json.loads(raw)[0]))
        return ids

    def cancel(self, task_id: str | None, running: bool) -> None:
        if not task_id:
            return
        # A queued task is discarded when a worker takes it; a running one is interrupted. If the
        # broker cannot be told, the job is cancelled all the same: the runner checks the stored
        # status at every step and stops, and a worker that takes the task finds nothing to do.
        try:
            self.celery.control.revoke(task_id, terminate=running, signal="SIGTERM")
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


def _task_id(message: dict) -> str | None:
    return (message.get("headers") or {}).get("id")


class LocalDispatcher:
    """Embedded mode: the web process's scheduler of local analysis processes (worker/local.py).

    The stored queued jobs are its queue, so submitting only wakes it; that works from any
    process, including the one a background callback runs in.
    """

    mode = "embedded"

    def __init__(self, runner: LocalRunner) -> None:
        self.runner = runner

    def submit(self, job_id: str, attempt: int = 0) -> str:
        self.runner.submit(job_id)
        return job_id

    def cancel(self, task_id: str | None, running: bool) -> None:
        # The scheduler sees the cancelled status and stops the job's process.
        self.runner.cancel(task_id or "")

    def queue_depth(self) -> int:
        return self.runner.queued()

    def workers(self) -> list[str]:
        """The scheduler, while it runs (health then says the jobs have somewhere to go)."""
        if not self.runner.alive:
            return []
        return [f"local scheduler ({self.runner.busy} of {self.runner.settings.local_workers} processes busy)"]

    def redis_ok(self) -> bool | None:
        return None
