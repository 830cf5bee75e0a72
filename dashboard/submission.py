"""Accepting an upload: check it completely, then store it as a queued job and dispatch it.

Nothing is stored unless every check passes; the error says what to fix, with an HTTP status
the API returns as is (the upload page shows the same message).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import PurePath

from analysis.errors import ParameterError, TableError, UnsupportedFormatError
from analysis.params import Parameters
from analysis.pipeline import load_table
from analysis.validate import PeakTable
from dashboard.services import Services
from store.jobs import create_job, fail_job, get_job, snapshot

log = logging.getLogger(__name__)

ACCEPTED_EXTENSIONS = (".csv", ".tsv", ".txt", ".xlsx")
MAX_ISSUES_RETURNED = 1000


class SubmissionError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def parse_parameters(raw: str | dict | None) -> Parameters:
    if raw in (None, ""):
        return Parameters()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SubmissionError(400, "malformed_parameters", f"params is not valid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise SubmissionError(400, "malformed_parameters", "params must be a JSON object of name: value")
    try:
        return Parameters.from_mapping(raw)
    except ParameterError as exc:
        raise SubmissionError(422, "invalid_parameters", exc.message) from None


def check_upload(filename: str, data: bytes, params: Parameters, max_bytes: int) -> PeakTable:
    """Read and validate the file exactly as the analysis will; raise SubmissionError if it cannot run."""
    name = PurePath(filename or "").name or "upload"
    if len(data) > max_bytes:
        raise SubmissionError(
            413, "too_large", f"{name} is {len(data) / 1048576:.1f} MB; the limit is {max_bytes / 1048576:g} MB"
        )
    suffix = PurePath(name).suffix.lower()
    if suffix and suffix not in ACCEPTED_EXTENSIONS:
        raise SubmissionError(
            415, "unsupported_type", f"{name}: {suffix} files are not accepted; upload CSV, TSV or XLSX"
        )
    try:
        table = load_table(data, filename=name, params=params, max_bytes=max_bytes)
    except UnsupportedFormatError as exc:
        raise SubmissionError(415, "unsupported_type", f"{name}: {exc.message}") from None
    except TableError as exc:
        raise SubmissionError(422, "invalid_table", f"{name}: {exc.message}") from None
    if table.issues and params.on_invalid_rows == "reject":
        bad_rows = len({issue.row for issue in table.issues})
        raise SubmissionError(
            422,
            "invalid_rows",
            f"{name}: {bad_rows} of {table.n_rows} rows are invalid; fix them, or submit with "
            "on_invalid_rows = skip to analyse the valid rows only",
            [issue.to_dict() for issue in table.issues[:MAX_ISSUES_RETURNED]],
        )
    return table


def submit(found: Services, *, filename: str, data: bytes, params: Parameters, notify_email: str | None = None) -> dict:
    """Store the upload and a queued job (committed), then dispatch it; returns the job snapshot."""
    name = PurePath(filename or "").name or "upload"
    job = create_job(
        found.db,
        filename=name,
        content=data,
        sha256=hashlib.sha256(data).hexdigest(),
        parameters=params.to_dict(),
        notify_email=notify_email or None,
    )
    try:
        found.dispatcher.submit(str(job.id))
    except Exception as exc:
        log.error("could not queue job: %s", exc, extra={"job_id": str(job.id)})
        event = fail_job(found.db, job.id, f"could not be queued: {type(exc).__name__}: {exc}")
        found.publisher.publish(event)
        raise SubmissionError(
            503,
            "queue_unavailable",
            "the job queue is not reachable; the job was stored as failed and can be retried later",
        ) from None
    return snapshot(get_job(found.db, job.id), name)
