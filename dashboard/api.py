"""The JSON API under /api (docs/api.md). Errors are {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import io
import logging
import time

from dash.exceptions import DependencyException
from flask import Blueprint, Flask, Response, jsonify, request, send_file, url_for
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from analysis.export import to_csv_bytes, to_json_bytes, to_xlsx_bytes
from dashboard.auth import client_address, current_account, upload_allowed
from dashboard.errors import SubmissionError, status_of
from dashboard.services import services
from dashboard.submission import check_email, parse_mapping, parse_parameters
from store.jobs import count_jobs_by_status, get_job, get_upload, list_jobs, snapshot
from store.migrate import current_revision, head_revision
from store.models import JOB_STATUSES, JobStatus
from store.results import load_result
from worker.control import JobControlError

log = logging.getLogger(__name__)
api = Blueprint("api", __name__)
MAX_OFFSET = 10**9


def error(code: str, message: str, details: list | None = None, status: int | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details or []}})
    response.status_code = status or status_of(code)
    return response


def links(job_id: str) -> dict:
    prefix = services().settings.url_prefix
    return {
        "self": url_for("api.show", job_id=job_id),
        "results": url_for("api.results_json", job_id=job_id),
        "ws": f"{prefix}ws/jobs/{job_id}",
        "page": f"{prefix}jobs/{job_id}",
    }


def caller():
    """The account the request acts for (the guard in dashboard/auth.py has let only these in)."""
    account = current_account()
    if account is None:
        raise SubmissionError("unauthorized", "sign in, or send a personal API token")
    return account


def job_or_404(job_id: str):
    """The job if the caller may see it; another user's job is "not found", as if it did not exist."""
    job = get_job(services().db, job_id, visible_to=caller())
    if job is None:
        raise SubmissionError("not_found", f"no job {job_id}")
    return job


def described(job) -> dict:
    upload = get_upload(services().db, job.upload_id)
    return {**snapshot(job, upload.filename if upload else None), "links": links(str(job.id))}


@api.errorhandler(SubmissionError)
def submission_error(exc: SubmissionError):
    return error(exc.code, exc.message, exc.details)


@api.errorhandler(JobControlError)
def job_control_error(exc: JobControlError):
    return error(exc.code, exc.message)


@api.post("/jobs")
def create():
    found = services()
    account = caller()
    if not account.may_write:
        raise SubmissionError("forbidden", f"{account.username} is a viewer: viewers cannot submit jobs")
    if not upload_allowed(account):
        raise SubmissionError(
            "rate_limited", f"more than {found.settings.upload_rate_limit} uploads; wait before submitting more"
        )
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise SubmissionError("no_file", "send the peak table as the multipart field 'file'")
    data = upload.read()
    if not data.strip():
        raise SubmissionError("invalid_table", f"{upload.filename}: the file is empty")
    params = parse_parameters(request.form.get("params"))
    email = check_email(request.form.get("notify_email"))
    mapping = parse_mapping(request.form.get("mapping"))
    found.checker.check(upload.filename, data, params, found.settings.max_upload_bytes, mapping)
    event = found.jobs.submit(
        filename=upload.filename,
        content=data,
        parameters=params.to_dict(),
        notify_email=email,
        input_mapping=mapping,
        by=account,
        address=client_address(),
    )
    response = jsonify({"id": event.job_id, "status": event.status, "links": links(event.job_id)})
    response.status_code = 202
    response.headers["Location"] = links(event.job_id)["self"]
    return response


@api.get("/jobs")
def index():
    statuses = [s for s in request.args.get("status", "").split(",") if s]
    unknown = sorted(set(statuses) - set(JOB_STATUSES))
    if unknown:
        raise SubmissionError("bad_filter", f"unknown status {', '.join(unknown)}; use {', '.join(JOB_STATUSES)}")
    try:
        limit = min(max(int(request.args.get("limit", 50)), 1), 1000)
        offset = int(request.args.get("offset", 0))
    except ValueError:
        raise SubmissionError("bad_filter", "limit and offset must be whole numbers") from None
    if not 0 <= offset <= MAX_OFFSET:
        raise SubmissionError("bad_filter", f"offset must be between 0 and {MAX_OFFSET:,}")
    account = caller()
    jobs = list_jobs(
        services().db,
        statuses=statuses,
        limit=limit,
        offset=offset,
        search=request.args.get("q", ""),
        visible_to=account,
    )
    return jsonify(
        {
            "jobs": [{**snapshot(job, name), "links": links(str(job.id))} for job, name in jobs],
            "counts": count_jobs_by_status(services().db, visible_to=account),
        }
    )


@api.get("/jobs/<job_id>")
def show(job_id: str):
    return jsonify(described(job_or_404(job_id)))


def finished_result(job_id: str):
    job = job_or_404(job_id)
    if job.status != JobStatus.SUCCEEDED:
        raise SubmissionError("not_ready", f"job {job_id} is {job.status}; results exist once it has succeeded")
    return job, load_result(services().db, job.id)


def download(data: bytes, mimetype: str, job, extension: str) -> Response:
    """Named after the input file, whatever its characters: Flask writes an ASCII `filename`
    and the exact name as RFC 5987 `filename*` (RFC 6266)."""
    upload = get_upload(services().db, job.upload_id)
    stem = (upload.filename.rsplit(".", 1)[0] if upload else "result") or "result"
    return send_file(
        io.BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=f"{stem}-rt-check.{extension}"
    )


@api.get("/jobs/<job_id>/results")
def results_json(job_id: str):
    _, result = finished_result(job_id)
    return Response(to_json_bytes(result), mimetype="application/json")


@api.get("/jobs/<job_id>/results.json")
def results_json_file(job_id: str):
    """The same document as a file named after the input, like the CSV and XLSX downloads."""
    job, result = finished_result(job_id)
    return download(to_json_bytes(result), "application/json", job, "json")


@api.get("/jobs/<job_id>/results.csv")
def results_csv(job_id: str):
    job, result = finished_result(job_id)
    return download(to_csv_bytes(result), "text/csv", job, "csv")


@api.get("/jobs/<job_id>/results.xlsx")
def results_xlsx(job_id: str):
    job, result = finished_result(job_id)
    return download(
        to_xlsx_bytes(result), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", job, "xlsx"
    )


@api.post("/jobs/<job_id>/cancel")
def cancel(job_id: str):
    found = services()
    event = found.jobs.cancel(job_id, by=caller(), address=client_address())
    return jsonify(described(get_job(found.db, event.job_id)))


@api.post("/jobs/<job_id>/retry")
def retry(job_id: str):
    found = services()
    event = found.jobs.retry(job_id, by=caller(), address=client_address())
    response = jsonify(described(get_job(found.db, event.job_id)))
    response.status_code = 202
    return response


@api.delete("/jobs/<job_id>")
def remove(job_id: str):
    services().jobs.delete(job_id, by=caller(), address=client_address())
    return Response(status=204)


@api.get("/health")
def health():
    return health_response()


@api.get("/openapi.json")
def openapi():
    from dashboard.openapi import document

    return jsonify(document(services().settings.url_prefix))


@api.route("/<path:anything>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown(anything: str):
    # Without this, Dash's catch-all page route would answer unknown API paths with HTML.
    raise SubmissionError("not_found", f"no API route /api/{anything}")


def health_response() -> Response:
    found = services()
    report: dict = {"mode": found.dispatcher.mode}
    healthy = True
    started = time.perf_counter()
    try:
        with found.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = current_revision(found.db)
        report["database"] = {
            "ok": revision == head_revision(),
            "backend": found.db.engine.dialect.name,
            "schema_revision": revision,
            "latency_ms": round((time.perf_counter() - started) * 1e3, 1),
        }
        healthy &= report["database"]["ok"]
    except Exception as exc:
        report["database"] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
        healthy = False
    redis_ok = found.dispatcher.redis_ok()
    if redis_ok is not None:
        report["redis"] = {"ok": redis_ok}
        healthy &= redis_ok
    workers = found.dispatcher.workers() if redis_ok is not False else None
    report["workers"] = {"ok": bool(workers), "names": workers or []}
    report["queue_depth"] = found.dispatcher.queue_depth() if redis_ok is not False else None
    try:  # job counts only for those who may see jobs (health itself answers anyone)
        account = current_account()
        report["jobs"] = count_jobs_by_status(found.db, visible_to=account) if account else None
    except Exception:
        report["jobs"] = None
    report["status"] = "ok" if healthy and workers else ("degraded" if healthy else "down")
    response = jsonify(report)
    response.status_code = 200 if healthy else 503
    return response


def register(app: Flask, prefix: str) -> None:
    app.register_blueprint(api, url_prefix=f"{prefix}api")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith(f"{prefix}api"):
            code = {413: "too_large", 404: "not_found", 405: "method_not_allowed", 429: "rate_limited"}.get(
                exc.code, "http_error"
            )
            message = (
                exc.description
                if exc.code != 413
                else (f"the upload is larger than the {services().settings.max_upload_mb:g} MB limit")
            )
            return error(code, message, status=exc.code or 500)
        return exc

    @app.errorhandler(DependencyException)
    def unknown_asset(exc: DependencyException):  # a path under /_dash-component-suites/ Dash does not serve
        return Response("Not found", status=404, mimetype="text/plain")

    @app.errorhandler(SQLAlchemyError)
    def database_error(exc: SQLAlchemyError):
        log.error("database error on %s %s: %s", request.method, request.path, str(exc).splitlines()[0])
        if request.path.startswith(f"{prefix}api"):
            return error("database_unavailable", "the database is not reachable; nothing was stored, try again shortly")
        return Response("The database is not reachable; try again shortly.", status=503, mimetype="text/plain")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        if request.path.startswith(f"{prefix}api"):
            return error("internal_error", "something went wrong on the server; the details are in its log")
        return Response("Internal server error", status=500)
