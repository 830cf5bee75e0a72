"""Job control: the one place that submits, cancels, retries and deletes jobs.

Each operation is a store transition, then the announcement of its event, then (where the job
must run) a dispatch. A dispatch that fails is handled here, once: the job is failed with the
reason and the caller gets `QueueUnavailable`. The API, every page and the batch path call
these methods and nothing else, so every door into the system gives the same guarantees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import uuid
from pathlib import PurePath
from typing import Protocol

from store.db import Database
from store.jobs import (
    Event,
    TransitionError,
    cancel_job,
    create_job,
    create_job_for_upload,
    delete_job,
    fail_job,
    get_job,
    retry_job,
)
from store.models import JobStatus
from worker.progress import Publisher

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    """What runs jobs: Celery workers (full stack) or the local process pool (embedded)."""

    mode: str

    def submit(self, job_id: str, attempt: int = 0) -> str: ...

    def cancel(self, task_id: str | None, running: bool) -> None: ...


class JobControlError(Exception):
    """A request job control refuses; `code` is one of the API's error codes (dashboard/errors.py)."""

    code = "conflict"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobNotFound(JobControlError):
    code = "not_found"


class JobConflict(JobControlError):
    code = "conflict"


class QueueUnavailable(JobControlError):
    code = "queue_unavailable"


@dataclasses.dataclass
class JobControl:
    db: Database
    publisher: Publisher
    dispatcher: Dispatcher

    def submit(self, *, filename: str, content: bytes, parameters: dict, notify_email: str | None = None) -> Event:
        """Store the upload and a queued job (committed), announce it, then dispatch it."""
        event = create_job(
            self.db,
            filename=PurePath(filename or "").name or "upload",
            content=content,
            sha256=hashlib.sha256(content).hexdigest(),
            parameters=parameters,
            notify_email=notify_email or None,
        )
        return self._queue(event, attempt=0)

    def submit_staged(self, upload_id: int, *, parameters: dict, notify_email: str | None = None) -> Event:
        """A queued job for an upload the page staged earlier."""
        try:
            event = create_job_for_upload(self.db, upload_id, parameters=parameters, notify_email=notify_email or None)
        except LookupError as exc:
            raise JobNotFound(str(exc)) from None
        return self._queue(event, attempt=0)

    def cancel(self, job_id: str | uuid.UUID) -> Event:
        job = self._job(job_id)
        try:
            event = cancel_job(self.db, job.id)
        except TransitionError as exc:
            raise JobConflict(f"job {job_id} is {exc.current}; only queued or running jobs can be cancelled") from None
        self.publisher.publish(event)
        self.dispatcher.cancel(job.celery_task_id, running=job.status == JobStatus.RUNNING)
        return event

    def retry(self, job_id: str | uuid.UUID) -> Event:
        job = self._job(job_id)
        try:
            event = retry_job(self.db, job.id)
        except TransitionError as exc:
            raise JobConflict(f"job {job_id} is {exc.current}; only failed or cancelled jobs can be retried") from None
        return self._queue(event, attempt=job.attempts + 1)

    def delete(self, job_id: str | uuid.UUID) -> Event:
        try:
            event = delete_job(self.db, self._job(job_id).id)
        except TransitionError as exc:
            raise JobConflict(f"job {job_id} is {exc.current}; cancel it before deleting it") from None
        if event is None:  # deleted by someone else meanwhile
            raise JobNotFound(f"no job {job_id}")
        self.publisher.publish(event)
        return event

    def _job(self, job_id: str | uuid.UUID):
        job = get_job(self.db, job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        return job

    def _queue(self, event: Event, *, attempt: int) -> Event:
        self.publisher.publish(event)
        try:
            self.dispatcher.submit(event.job_id, attempt=attempt)
        except Exception as exc:
            log.error("could not queue the job: %s", exc, extra={"job_id": event.job_id})
            reason = f"could not be queued: {type(exc).__name__}: {exc}"
            with contextlib.suppress(TransitionError):  # cancelled or taken meanwhile: nothing waits
                self.publisher.publish(fail_job(self.db, event.job_id, reason))
            raise QueueUnavailable(
                "the job queue is not reachable; the job was stored as failed and can be retried later"
            ) from None
        return event
