"""E-mail to the person who asked, when their job finishes (only if SMTP_URL is set)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from sqlalchemy import update

from store.jobs import get_job, snapshot
from store.models import Job, JobStatus, utcnow
from worker.context import WorkerContext

log = logging.getLogger(__name__)


def notify_job_finished(context: WorkerContext, job_id: str) -> bool:
    """Send one mail per finished job; a repeated call (a redelivered task) sends nothing."""
    settings = context.settings
    job = get_job(context.db, job_id)
    if (
        job is None
        or not job.notify_email
        or not settings.smtp_url
        or job.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED)
    ):
        return False
    if not _claim_notification(context, job.id):
        return False
    try:
        _send(settings.smtp_url, _message(context, job, settings.mail_from))
    except (OSError, smtplib.SMTPException):
        _release_notification(context, job.id)  # let the retry send it
        raise
    log.info("notified %s", job.notify_email, extra={"job_id": str(job.id)})
    return True


def _claim_notification(context: WorkerContext, key) -> bool:
    with context.db.transaction() as session:
        result = session.execute(
            update(Job).where(Job.id == key, Job.notified_at.is_(None)).values(notified_at=utcnow())
        )
    return result.rowcount == 1


def _release_notification(context: WorkerContext, key) -> None:
    with context.db.transaction() as session:
        session.execute(update(Job).where(Job.id == key).values(notified_at=None))


def _message(context: WorkerContext, job: Job, sender: str) -> EmailMessage:
    state = snapshot(job)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = job.notify_email
    message["Subject"] = f"RT check {job.status}: job {str(job.id)[:8]}"
    link = f"{context.settings.public_url.rstrip('/')}/jobs/{job.id}" if context.settings.public_url else ""
    lines = [
        f"Your analysis {job.id} has {job.status}.",
        "",
        state["message"] or "",
        f"Duration: {state['duration_seconds']} s" if state["duration_seconds"] is not None else "",
    ]
    if link:
        lines += ["", f"Results: {link}"]
    message.set_content("\n".join(line for line in lines if line is not None))
    return message


def _send(smtp_url: str, message: EmailMessage) -> None:
    """smtp://host:port (plain), smtp+starttls://user:pass@host:587, smtps://user:pass@host:465."""
    url = urlsplit(smtp_url)
    host, port = url.hostname or "localhost", url.port
    if url.scheme == "smtps":
        client = smtplib.SMTP_SSL(host, port or 465, timeout=30, context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(host, port or 25, timeout=30)
    with client:
        if url.scheme == "smtp+starttls":
            client.starttls(context=ssl.create_default_context())
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)
