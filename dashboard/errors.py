"""The API's error contract in one place: every error code, its HTTP status and when it happens.

`SubmissionError` and the API's handlers take the status from here, the OpenAPI document
lists the codes from here, and a test checks docs/api.md names each one.
"""

from __future__ import annotations

ERRORS: dict[str, tuple[int, str]] = {
    "no_file": (400, "no `file` field in the upload"),
    "malformed_parameters": (400, "`params` or `mapping` is not a JSON object"),
    "bad_filter": (400, "an unknown status, or a limit or offset that is not a whole number"),
    "unreadable": (400, "the browser sent the file in a form that could not be read"),
    "host_not_allowed": (400, "the Host header is not in `ALLOWED_HOSTS` (DNS rebinding, a misrouted request)"),
    "unauthorized": (401, "no valid session or API token (a revoked token, a disabled account)"),
    "forbidden": (403, "a viewer asked to submit, cancel, retry or delete; or a non-admin an admin action"),
    "csrf_failed": (403, "a request with the session cookie lacked the CSRF token, or came from another origin"),
    "local_only": (403, "single-user mode (`AUTH_REQUIRED=false`) answers only this machine's own clients"),
    "not_found": (404, "no such job, upload or route"),
    "method_not_allowed": (405, "the route exists, not for this method"),
    "conflict": (409, "the job's status does not allow it (e.g. retry a running job)"),
    "not_ready": (409, "results exist once the job has succeeded"),
    "too_large": (413, "larger than `MAX_UPLOAD_MB`"),
    "rate_limited": (429, "too many failed sign-ins, or too many uploads, in a short time; wait and try again"),
    "unsupported_type": (
        415,
        "binary data, legacy `.xls`, text in no encoding it reads, a broken `.xlsx`, another extension",
    ),
    "invalid_table": (422, "a required column missing, no rows, an empty file"),
    "invalid_parameters": (422, "a parameter outside its allowed range"),
    "invalid_rows": (422, "invalid rows with `on_invalid_rows = reject` (each bad cell in `details`)"),
    "invalid_email": (422, "`notify_email` is not one address of at most 320 characters"),
    "check_timeout": (422, "checking the file took longer than `UPLOAD_CHECK_SECONDS`; it was stopped"),
    "internal_error": (500, "a server fault; the details are in its log"),
    "queue_unavailable": (503, "the queue is unreachable: the job is stored as failed and can be retried"),
    "database_unavailable": (503, "the database is unreachable: nothing was stored; try again shortly"),
    "busy": (503, "every upload check (`UPLOAD_CHECK_WORKERS`) stayed busy; try again shortly"),
    "http_error": (400, "any other HTTP error (the response carries its own status)"),
}


def status_of(code: str) -> int:
    return ERRORS[code][0]


class SubmissionError(Exception):
    """A request the API (or a page) refuses, with one of the codes above."""

    def __init__(self, code: str, message: str, details: list | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status_of(code), code, message, details or []

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}
