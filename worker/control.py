"""Job control: the one place that submits, cancels, retries and deletes jobs.

Each operation checks who asks (`by`: the account; its job must be visible to it, and viewers
change nothing), then makes a store transition, records it in the audit trail, announces its
event and (where the job must run) dispatches it. A dispatch that fails is handled here, once:
the job is failed with the reason and the caller gets `QueueUnavailable`. The API, every page and the batch path call
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

from store import audit
from store.accounts import SINGLE_USER, Account
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


class JobForbidden(JobControlError):
    code = "forbidden"


class JobConflict(JobControlError):
    code = "conflict"


class QueueUnavailable(JobControlError):
    code = "queue_unavailable"


@dataclasses.dataclass
class JobControl:
    db: Database
    publisher: Publisher
    dispatcher: Dispatcher

    def submit(
        self,
        *,
        filename: str,
        content: bytes,
        parameters: dict,
        notify_email: str | None = None,
        input_mapping: dict | None = None,
        by: Account = SINGLE_USER,
        address: str | None = None,
    ) -> Event:
        """Store the upload and a queued job (committed), announce it, then dispatch it."""
        self._may_write(by)
        event = create_job(
            self.db,
            filename=PurePath(filename or "").name or "upload",
            content=content,
            sha256=hashlib.sha256(content).hexdigest(),
            parameters=parameters,
            notify_email=notify_email or None,
            owner_id=by.id,
            input_mapping=input_mapping,
        )
        self._audit(by, address, "submit", event.job_id, {"filename": PurePath(filename or "").name})
        return self._queue(event, attempt=0)

    def submit_staged(
        self,
        upload_key: str,
        *,
        parameters: dict,
        notify_email: str | None = None,
        by: Account = SINGLE_USER,
        address: str | None = None,
    ) -> Event:
        """A queued job for an upload the same account staged earlier."""
        self._may_write(by)
        try:
            event = create_job_for_upload(
                self.db, upload_key, parameters=parameters, notify_email=notify_email or None, owner_id=by.id
            )
        except LookupError as exc:
            raise JobNotFound(str(exc)) from None
        self._audit(by, address, "submit", event.job_id, {"staged": True})
        return self._queue(event, attempt=0)

    def cancel(self, job_id: str | uuid.UUID, *, by: Account = SINGLE_USER, address: str | None = None) -> Event:
        job = self._job(job_id, by)
        try:
            event = cancel_job(self.db, job.id)
        except TransitionError as exc:
            raise JobConflict(f"job {job_id} is {exc.current}; only queued or running jobs can be cancelled") from None
        self._audit(by, address, "cancel", event.job_id)
        self.publisher.publish(event)
        self.dispatcher.cancel(job.celery_task_id, running=job.status == JobStatus.RUNNING)
        return event

    def retry(self, job_id: str | uuid.UUID, *, by: Account = SINGLE_USER, address: str | None = None) -> Event:
        job = self._job(job_id, by)
        try:
            event = retry_job(self.db, job.id)
        except TransitionError as exc:
            raise JobConflict(f"job {job_id} is {exc.current}; only failed or cancelled jobs can be retried") from None
        self._audit(by, address, "retry", event.job_id)
        return self._queue(event, attempt=job.attempts + 1)

    def delete(self, job_id: str | uuid.UUID, *, by: Account = SINGLE_USER, address: str | None = None) -> Event:
        try:
            event = delete_job(self.db, self._job(job_id, by).id)
        except TransitionError as exc:
            raise JobConflict(f"job {job_id} is {exc.current}; cancel it before deleting it") from None
        if event is None:  # deleted by someone else meanwhile
            raise JobNotFound(f"no job {job_id}")
        self._audit(by, address, "delete", event.job_id)
        self.publisher.publish(event)
        return event

    def _job(self, job_id: str | uuid.UUID, by: Account):
        """The job if `by` may see it (else "no job", as if it did not exist) and may change it."""
        job = get_job(self.db, job_id, visible_to=by)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        self._may_write(by)
        return job

    @staticmethod
    def _may_write(by: Account) -> None:
        if not by.may_write:
            raise JobForbidden(f"{by.username} is a viewer: viewers can look at jobs but not submit or change them")

    def _audit(self, by: Account, address: str | None, action: str, job_id: str, detail: dict | None = None) -> None:
        """Recorded after the change it describes (its own transaction): a failure to record is
        logged, and does not undo what the user did."""
        try:
            audit.record(
                self.db, actor=by.username, action=action, target=f"job {job_id}", detail=detail, address=address
            )
        except Exception as exc:
            log.error("could not record %s of job %s in the audit trail: %s", action, job_id, exc)

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
