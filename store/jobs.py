"""The job lifecycle in one place: allowed transitions only, each a compare-and-set with its event.

    queued → running → succeeded | failed | cancelled
    queued → cancelled | failed        (cancelled before it ran; could not be dispatched)
    failed | cancelled → queued        (retry)
    running → running                  (reclaim, only when the heartbeat is stale: a worker died)

Every change bumps the job's `event_seq` and stores a JobEvent with that number in the same
transaction, so the stored events are the complete, ordered history a stream can replay.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from store.access import visible_jobs
from store.accounts import Account
from store.db import Database
from store.models import TERMINAL_STATUSES, Job, JobEvent, JobResult, JobStatus, ResultModel, ResultRow, Upload, utcnow

STAGED_UPLOAD_LIFETIME = dt.timedelta(days=1)
QUEUED_MESSAGE = "waiting for a worker"
DELETED = "deleted"  # the status of the event that announces a deletion (no row keeps it)
ALLOWED = {
    JobStatus.RUNNING: (JobStatus.QUEUED,),
    JobStatus.SUCCEEDED: (JobStatus.RUNNING,),
    JobStatus.FAILED: (JobStatus.QUEUED, JobStatus.RUNNING),
    JobStatus.CANCELLED: (JobStatus.QUEUED, JobStatus.RUNNING),
    JobStatus.QUEUED: (JobStatus.FAILED, JobStatus.CANCELLED),
}


class TransitionError(Exception):
    """A change the job's current status does not allow (or the job does not exist)."""

    def __init__(self, job_id: uuid.UUID, wanted: str, current: str | None) -> None:
        self.job_id, self.wanted, self.current = job_id, wanted, current
        where = f"it is {current}" if current else "it does not exist"
        super().__init__(f"job {job_id} cannot become {wanted}: {where}")


@dataclass(frozen=True)
class Event:
    job_id: str
    seq: int
    status: str
    percent: int
    step: str
    message: str
    ts: str

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def delete_results(session: Session, job_id: uuid.UUID) -> None:
    """Remove a job's stored result (rows, model reports, rule tables) in the caller's transaction."""
    for table in (ResultRow, ResultModel, JobResult):
        session.execute(delete(table).where(table.job_id == job_id))


def parse_job_id(job_id: uuid.UUID | str) -> uuid.UUID:
    return job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))


def stage_upload(db: Database, *, filename: str, content: bytes, sha256: str, owner_id: int | None = None) -> str:
    """Keep a checked file until the user presses Analyze; unused ones are cleaned up after a day.

    Returns the upload's key: random, so a page can hold it without letting anyone who sees or
    forges it reach another user's file (the key is also checked against the owner)."""
    with db.transaction() as session:
        upload = Upload(
            filename=filename[:255],
            sha256=sha256,
            size_bytes=len(content),
            content=content,
            owner_id=owner_id,
            key=secrets.token_urlsafe(24),
        )
        session.add(upload)
        session.flush()
        return upload.key


def create_job(
    db: Database,
    *,
    filename: str,
    content: bytes,
    sha256: str,
    parameters: dict,
    notify_email: str | None = None,
    owner_id: int | None = None,
    input_mapping: dict | None = None,
) -> Event:
    """Store the upload and a queued job for it, committed together; returns the job's first event."""
    with db.transaction() as session:
        upload = Upload(
            filename=filename[:255], sha256=sha256, size_bytes=len(content), content=content, owner_id=owner_id
        )
        session.add(upload)
        session.flush()
        return _queue(session, upload.id, parameters, notify_email, owner_id, input_mapping)


def create_job_for_upload(
    db: Database, upload_key: str, *, parameters: dict, notify_email: str | None = None, owner_id: int | None = None
) -> Event:
    """A queued job for an upload the same owner staged earlier; returns the job's first event."""
    owner = Upload.owner_id.is_(None) if owner_id is None else Upload.owner_id == owner_id
    with db.transaction() as session:
        upload_id = session.execute(
            select(Upload.id).where(Upload.key == str(upload_key or ""), owner)
        ).scalar_one_or_none()
        if upload_id is None:
            raise LookupError("the uploaded file is gone (unused uploads are removed after a day); upload it again")
        return _queue(session, upload_id, parameters, notify_email, owner_id)


def _queue(
    session: Session,
    upload_id: int,
    parameters: dict,
    notify_email: str | None,
    owner_id: int | None,
    input_mapping: dict | None = None,
) -> Event:
    now = utcnow()
    job = Job(
        upload_id=upload_id,
        owner_id=owner_id,
        parameters=parameters,
        input_mapping=input_mapping or None,
        status=JobStatus.QUEUED,
        progress_percent=0,
        progress_step="queued",
        progress_message=QUEUED_MESSAGE,
        event_seq=1,
        notify_email=notify_email,
        created_at=now,
        attempts=0,
    )
    session.add(job)
    session.flush()
    session.add(
        JobEvent(
            job_id=job.id, seq=1, status=JobStatus.QUEUED, percent=0, step="queued", message=QUEUED_MESSAGE, ts=now
        )
    )
    return Event(str(job.id), 1, JobStatus.QUEUED, 0, "queued", QUEUED_MESSAGE, now.isoformat())


def get_job(db: Database, job_id: uuid.UUID | str, *, visible_to: Account | None = None) -> Job | None:
    """The job, if it exists and (given an account) that account may see it."""
    try:
        key = parse_job_id(job_id)
    except ValueError:
        return None
    query = select(Job).where(Job.id == key)
    condition = visible_jobs(visible_to)
    if condition is not None:
        query = query.where(condition)
    with db.session() as session:
        return session.execute(query).scalar_one_or_none()


def get_upload(db: Database, upload_id: int) -> Upload | None:
    with db.session() as session:
        return session.get(Upload, upload_id)


def list_jobs(
    db: Database,
    *,
    statuses: Iterable[str] = (),
    limit: int = 50,
    offset: int = 0,
    search: str = "",
    visible_to: Account | None = None,
) -> list[tuple[Job, str]]:
    """Newest first, with each job's file name; given an account, only the jobs it may see."""
    query = select(Job, Upload.filename).join(Upload, Upload.id == Job.upload_id)
    condition = visible_jobs(visible_to)
    if condition is not None:
        query = query.where(condition)
    statuses = list(statuses)
    if statuses:
        query = query.where(Job.status.in_(statuses))
    if search:
        query = query.where(Upload.filename.ilike(f"%{search}%"))
    query = query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    with db.session() as session:
        return [(job, filename) for job, filename in session.execute(query).all()]


def count_jobs_by_status(db: Database, *, visible_to: Account | None = None) -> dict[str, int]:
    query = select(Job.status, func.count()).group_by(Job.status)
    condition = visible_jobs(visible_to)
    if condition is not None:
        query = query.where(condition)
    with db.session() as session:
        rows = session.execute(query).all()
    return {status: count for status, count in rows}


def _transition(
    session: Session,
    job_id: uuid.UUID,
    to: str,
    *,
    allowed_from: Iterable[str],
    percent: int | None,
    step: str,
    message: str,
    extra_condition=None,
    **values,
) -> Event:
    now = utcnow()
    condition = Job.status.in_(list(allowed_from))
    if extra_condition is not None:
        condition = or_(condition, extra_condition)
    changes = {
        "status": to,
        "progress_step": step,
        "progress_message": message,
        "event_seq": Job.event_seq + 1,
        **values,
    }
    if percent is not None:
        changes["progress_percent"] = percent
    statement = (
        update(Job).where(Job.id == job_id, condition).values(**changes).returning(Job.event_seq, Job.progress_percent)
    )
    row = session.execute(statement).first()
    if row is None:
        current = session.execute(select(Job.status).where(Job.id == job_id)).scalar_one_or_none()
        raise TransitionError(job_id, to, current)
    seq, stored_percent = row
    session.add(JobEvent(job_id=job_id, seq=seq, status=to, percent=stored_percent, step=step, message=message, ts=now))
    return Event(str(job_id), seq, to, stored_percent, step, message, now.isoformat())


def claim_job(
    db: Database, job_id: uuid.UUID | str, *, worker: str, task_id: str | None = None, stale_after_seconds: float
) -> Event | None:
    """queued → running for exactly one caller; a running job with a stale heartbeat can be reclaimed.

    Returns None when the job is not claimable (someone else runs it, it finished, it is gone).
    """
    key = parse_job_id(job_id)
    now = utcnow()
    stale = and_(Job.status == JobStatus.RUNNING, Job.heartbeat_at < now - dt.timedelta(seconds=stale_after_seconds))
    try:
        with db.transaction() as session:
            return _transition(
                session,
                key,
                JobStatus.RUNNING,
                allowed_from=ALLOWED[JobStatus.RUNNING],
                percent=0,
                step="starting",
                message=f"started on {worker}",
                extra_condition=stale,
                started_at=now,
                heartbeat_at=now,
                worker=worker[:255],
                celery_task_id=task_id,
                attempts=Job.attempts + 1,
                error=None,
            )
    except TransitionError:
        return None


def record_progress(db: Database, job_id: uuid.UUID | str, percent: int, step: str, message: str) -> Event | None:
    """Store a progress step of a running job (and beat its heart); None if it is not running."""
    key = parse_job_id(job_id)
    try:
        with db.transaction() as session:
            return _transition(
                session,
                key,
                JobStatus.RUNNING,
                allowed_from=(JobStatus.RUNNING,),
                percent=int(percent),
                step=step,
                message=message,
                heartbeat_at=utcnow(),
            )
    except TransitionError:
        return None


def heartbeat(db: Database, job_id: uuid.UUID | str) -> bool:
    with db.transaction() as session:
        result = session.execute(
            update(Job)
            .where(Job.id == parse_job_id(job_id), Job.status == JobStatus.RUNNING)
            .values(heartbeat_at=utcnow())
        )
    return result.rowcount == 1


def fail_job(db: Database, job_id: uuid.UUID | str, error: str, *, step: str = "failed") -> Event:
    with db.transaction() as session:
        return _transition(
            session,
            parse_job_id(job_id),
            JobStatus.FAILED,
            allowed_from=ALLOWED[JobStatus.FAILED],
            percent=None,
            step=step,
            message=error,
            error=error,
            finished_at=utcnow(),
        )


def cancel_job(db: Database, job_id: uuid.UUID | str, reason: str = "cancelled by the user") -> Event:
    with db.transaction() as session:
        return _transition(
            session,
            parse_job_id(job_id),
            JobStatus.CANCELLED,
            allowed_from=ALLOWED[JobStatus.CANCELLED],
            percent=None,
            step="cancelled",
            message=reason,
            finished_at=utcnow(),
        )


def retry_job(db: Database, job_id: uuid.UUID | str) -> Event:
    """failed | cancelled → queued, with its old results removed."""
    key = parse_job_id(job_id)
    with db.transaction() as session:
        event = _transition(
            session,
            key,
            JobStatus.QUEUED,
            allowed_from=ALLOWED[JobStatus.QUEUED],
            percent=0,
            step="queued",
            message="queued again",
            error=None,
            started_at=None,
            finished_at=None,
            heartbeat_at=None,
            worker=None,
        )
        delete_results(session, key)
    return event


def mark_succeeded(session: Session, job_id: uuid.UUID, message: str) -> Event:
    return _transition(
        session,
        job_id,
        JobStatus.SUCCEEDED,
        allowed_from=ALLOWED[JobStatus.SUCCEEDED],
        percent=100,
        step="done",
        message=message,
        finished_at=utcnow(),
        error=None,
    )


def queued_jobs_older_than(db: Database, seconds: float) -> list[tuple[str, str | None]]:
    """(job id, task id) of the jobs queued longer than this (created or queued again before then)."""
    cutoff = utcnow() - dt.timedelta(seconds=seconds)
    queued_at = select(func.max(JobEvent.ts)).where(JobEvent.job_id == Job.id, JobEvent.status == JobStatus.QUEUED)
    query = select(Job.id, Job.celery_task_id).where(
        Job.status == JobStatus.QUEUED, queued_at.scalar_subquery() < cutoff
    )
    with db.session() as session:
        return [(str(job_id), task_id) for job_id, task_id in session.execute(query).all()]


def fail_stale_jobs(db: Database, *, stale_after_seconds: float) -> list[Event]:
    """Fail every running job whose heartbeat is older than the limit: its worker is gone."""
    cutoff = utcnow() - dt.timedelta(seconds=stale_after_seconds)
    with db.session() as session:
        stale = session.execute(
            select(Job.id).where(Job.status == JobStatus.RUNNING, Job.heartbeat_at < cutoff)
        ).scalars()
        candidates = list(stale)
    events = []
    for job_id in candidates:
        with db.transaction() as session:
            try:
                events.append(
                    _transition(
                        session,
                        job_id,
                        JobStatus.FAILED,
                        allowed_from=(),
                        percent=None,
                        step="failed",
                        message=f"worker lost: no heartbeat for over {int(stale_after_seconds)} s",
                        error="worker lost",
                        finished_at=utcnow(),
                        extra_condition=and_(Job.status == JobStatus.RUNNING, Job.heartbeat_at < cutoff),
                    )
                )
            except TransitionError:
                continue  # it beat or finished meanwhile
    return events


def delete_job(db: Database, job_id: uuid.UUID | str) -> Event | None:
    """Delete a finished job with all its rows (and its upload when no other job uses it).

    Returns the event that announces the deletion (numbered after the job's last one, stored
    nowhere: the job's history goes with it), or None when there was no such job.
    """
    key = parse_job_id(job_id)
    with db.transaction() as session:
        job = session.get(Job, key)
        if job is None:
            return None
        if job.status not in TERMINAL_STATUSES:
            raise TransitionError(key, DELETED, job.status)
        event = Event(
            str(key), job.event_seq + 1, DELETED, job.progress_percent, DELETED, "deleted", utcnow().isoformat()
        )
        _delete_jobs(session, [key])
    return event


def _delete_jobs(session: Session, job_ids: list[uuid.UUID]) -> int:
    if not job_ids:
        return 0
    upload_ids = set(session.execute(select(Job.upload_id).where(Job.id.in_(job_ids))).scalars())
    for job_id in job_ids:
        delete_results(session, job_id)
    session.execute(delete(JobEvent).where(JobEvent.job_id.in_(job_ids)))
    deleted = session.execute(delete(Job).where(Job.id.in_(job_ids))).rowcount
    still_used = set(session.execute(select(Job.upload_id).where(Job.upload_id.in_(upload_ids))).scalars())
    orphans = upload_ids - still_used
    if orphans:
        session.execute(delete(Upload).where(Upload.id.in_(orphans)))
    return deleted


def cleanup_old_jobs(db: Database, *, older_than_days: float, now: dt.datetime | None = None) -> int:
    """Delete finished jobs created before the cutoff, with all their rows; running ones are kept.

    Uploads that were staged but never analysed go once they are a day old.
    """
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=older_than_days)
    with db.transaction() as session:
        old = list(
            session.execute(select(Job.id).where(Job.created_at < cutoff, Job.status.in_(TERMINAL_STATUSES))).scalars()
        )
        deleted = _delete_jobs(session, old)
        unused = select(Upload.id).where(
            Upload.created_at < now - STAGED_UPLOAD_LIFETIME, ~select(Job.id).where(Job.upload_id == Upload.id).exists()
        )
        session.execute(delete(Upload).where(Upload.id.in_(unused)))
        return deleted


def events_after(db: Database, job_id: uuid.UUID | str, seq: int) -> list[Event]:
    """Stored events of a job with a number above `seq`, in order."""
    key = parse_job_id(job_id)
    with db.session() as session:
        rows = session.execute(
            select(JobEvent).where(JobEvent.job_id == key, JobEvent.seq > seq).order_by(JobEvent.seq)
        ).scalars()
        return [Event(str(e.job_id), e.seq, e.status, e.percent, e.step, e.message, e.ts.isoformat()) for e in rows]


def snapshot(job: Job, filename: str | None = None) -> dict:
    """The job's latest state, as the API and the stream send it."""
    started, finished = job.started_at, job.finished_at
    return {
        "id": str(job.id),
        "status": job.status,
        "seq": job.event_seq,
        "percent": job.progress_percent,
        "step": job.progress_step,
        "message": job.progress_message,
        "error": job.error,
        "attempts": job.attempts,
        "parameters": job.parameters,
        "filename": filename,
        "created_at": job.created_at.isoformat(),
        "started_at": started.isoformat() if started else None,
        "finished_at": finished.isoformat() if finished else None,
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
        "duration_seconds": round((finished - started).total_seconds(), 3) if started and finished else None,
        "worker": job.worker,
    }
