"""The job runner: the one code path every dispatcher uses (Celery task, local analysis process)."""

from __future__ import annotations

import logging
import threading
import uuid

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from analysis.errors import InputError
from analysis.params import Parameters
from analysis.pipeline import run_file
from store.db import Database
from store.jobs import (
    TransitionError,
    claim_job,
    fail_job,
    get_job,
    get_upload,
    heartbeat,
    record_progress,
)
from store.results import save_result
from worker.limits import memory_limit_mb
from worker.progress import Publisher

log = logging.getLogger(__name__)

OUTCOMES = ("succeeded", "failed", "cancelled", "skipped")


class JobCancelled(Exception):
    """The job stopped being ours while it ran (cancelled, or reclaimed after a stall)."""


class TimeLimitReached(Exception):
    """The local scheduler's soft time limit (Celery raises its own SoftTimeLimitExceeded)."""


TIME_LIMIT_REASON = "the analysis took longer than the time limit and was stopped"


def memory_reason() -> str:
    limit = memory_limit_mb()
    return (
        f"the analysis needed more than the {limit:,} MB one analysis may use (JOB_MEMORY_MB) and was stopped; "
        "split the table, or raise the limit"
        if limit
        else "the machine ran out of memory for this analysis; split the table"
    )


def _database_unreachable(exc: BaseException) -> bool:
    """A lost or refused connection (server restarting, network gone), not a wrong statement."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def _log_outage(state) -> None:
    log.warning(
        "database unreachable (%s); trying again in %.1f s",
        state.outcome.exception(),
        state.next_action.sleep if state.next_action else 0,
    )


def through_outages(seconds: float) -> Retrying:
    """Calls made through this are tried again, with growing pauses, while the database cannot
    be reached, for up to `seconds`; then the last error is raised. Every job write is one
    transaction (a retried write happens once or not at all)."""
    return Retrying(
        retry=retry_if_exception(_database_unreachable),
        stop=stop_after_delay(seconds),
        wait=wait_exponential(multiplier=0.25, max=4),
        before_sleep=_log_outage,
        reraise=True,
    )


class Heartbeat:
    """Beats a running job's heart from a side thread, even through long silent steps."""

    def __init__(self, db: Database, job_id: uuid.UUID, every: float) -> None:
        self.db, self.job_id, self.every = db, job_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if not heartbeat(self.db, self.job_id):
                    return
            except Exception as exc:  # a missed beat is retried; the stale limit is many beats long
                log.warning("heartbeat failed: %s", exc, extra={"job_id": str(self.job_id)})


def run_job(
    db: Database,
    job_id: str | uuid.UUID,
    *,
    publisher: Publisher,
    worker: str,
    stale_after_seconds: float,
    heartbeat_seconds: float,
    task_id: str | None = None,
) -> str:
    """Claim the job, analyse its upload, store the result; returns one of OUTCOMES.

    Idempotent: a job that is finished, or running elsewhere with a live heartbeat, is left
    alone ("skipped"), so a redelivered task does nothing.
    """
    key = job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))
    context = {"job_id": str(key)}
    # A database outage shorter than half the stale limit is ridden out: the heartbeat is
    # missed meanwhile, and past the stale limit the job would be taken as dead.
    retrying = through_outages(stale_after_seconds / 2)
    claimed = retrying(claim_job, db, key, worker=worker, task_id=task_id, stale_after_seconds=stale_after_seconds)
    if claimed is None:
        job = retrying(get_job, db, key)
        log.info("job not claimed (status %s)", job.status if job else "unknown", extra=context)
        return "skipped"
    publisher.publish(claimed)
    log.info("job started on %s (attempt %s)", worker, retrying(get_job, db, key).attempts, extra=context)

    def progress(percent: int, step: str, message: str) -> None:
        event = retrying(record_progress, db, key, percent, step, message)
        if event is None:
            raise JobCancelled(step)
        publisher.publish(event)

    try:
        with Heartbeat(db, key, heartbeat_seconds):
            job = retrying(get_job, db, key)
            upload = retrying(get_upload, db, job.upload_id)
            params = Parameters.from_mapping(job.parameters)
            result = run_file(
                upload.content,
                filename=upload.filename,
                params=params,
                progress=progress,
                max_bytes=None,
                mapping=job.input_mapping,
            )
            progress(90, "saving", f"saving {len(result.rows):,} rows")
            finished = retrying(save_result, db, key, result)
        publisher.publish(finished)
        log.info("job succeeded: %s", finished.message, extra=context)
        return "succeeded"
    except (JobCancelled, TransitionError):
        log.info("job stopped: it was cancelled or taken over while running", extra=context)
        return "cancelled"
    except InputError as exc:
        return _fail(retrying, db, key, publisher, exc.message, context)
    except (SoftTimeLimitExceeded, TimeLimitReached):
        return _fail(retrying, db, key, publisher, TIME_LIMIT_REASON, context)
    except MemoryError:
        pass  # failed below, once the traceback and the arrays it holds are gone
    except Exception as exc:
        log.exception("job failed with an unexpected error", extra=context)
        return _fail(retrying, db, key, publisher, f"internal error: {type(exc).__name__}: {exc}", context)
    return _fail(retrying, db, key, publisher, memory_reason(), context)


def _fail(retrying: Retrying, db: Database, key: uuid.UUID, publisher: Publisher, reason: str, context: dict) -> str:
    try:
        publisher.publish(retrying(fail_job, db, key, reason))
    except TransitionError:
        return "cancelled"
    log.warning("job failed: %s", reason, extra=context)
    return "failed"
