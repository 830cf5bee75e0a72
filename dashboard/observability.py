"""Request logging and Prometheus metrics (/metrics) for the web process.

Job figures are read from the database when scraped, so they are the same whichever web
process answers and include the work of every worker machine. HTTP request counts and open
WebSocket connections belong to the process that answers (label them per instance in
Prometheus' scrape configuration).
"""

from __future__ import annotations

import logging
import re
import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import select

from dashboard.services import services
from store.jobs import count_jobs_by_status
from store.models import JOB_STATUSES, Job, JobStatus

log = logging.getLogger("rtcheck.requests")
JOB_IN_PATH = re.compile(r"/jobs/([0-9a-f-]{36})")
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300, 1800)
QUIET_PREFIXES = ("_dash-", "assets/", "_favicon", "_reload-hash")


class JobCollector:
    """Jobs by status, queue depth, job durations and open sockets, collected at scrape time."""

    def collect(self):
        found = services()
        counts = count_jobs_by_status(found.db)
        jobs = GaugeMetricFamily("rtcheck_jobs", "Stored jobs by status.", labels=["status"])
        for status in JOB_STATUSES:
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs
        depth = found.dispatcher.queue_depth()
        if depth is not None:
            yield GaugeMetricFamily("rtcheck_queue_depth", "Analyses waiting in the queue.", value=depth)
        yield _durations(found.db)
        yield GaugeMetricFamily(
            "rtcheck_websocket_connections", "Open WebSocket streams in this process.", value=found.hub.listener_count
        )


def _durations(db) -> HistogramMetricFamily:
    with db.session() as session:
        spans = session.execute(
            select(Job.started_at, Job.finished_at).where(
                Job.status == JobStatus.SUCCEEDED, Job.started_at.is_not(None), Job.finished_at.is_not(None)
            )
        ).all()
    seconds = [(finished - started).total_seconds() for started, finished in spans]
    buckets = [(str(bound), sum(1 for s in seconds if s <= bound)) for bound in DURATION_BUCKETS]
    buckets.append(("+Inf", len(seconds)))
    histogram = HistogramMetricFamily(
        "rtcheck_job_duration_seconds", "Run time of succeeded jobs still stored (start to finish)."
    )
    histogram.add_metric([], buckets, sum_value=sum(seconds))
    return histogram


def register(app: Flask, prefix: str) -> None:
    registry = CollectorRegistry()
    registry.register(JobCollector())
    requests_total = Counter(
        "rtcheck_http_requests", "HTTP requests answered by this process.", ["method", "status"], registry=registry
    )

    @app.before_request
    def start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        elapsed = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
        requests_total.labels(request.method, str(response.status_code)).inc()
        path = request.path[len(prefix) - 1 :] if request.path.startswith(prefix) else request.path
        quiet = path.lstrip("/").startswith(QUIET_PREFIXES) and response.status_code < 400
        extra = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(elapsed, 1),
            "client": request.remote_addr,
        }
        job = JOB_IN_PATH.search(request.path)
        if job:
            extra["job_id"] = job.group(1)
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "%s %s %s %.0f ms",
            request.method,
            request.path,
            response.status_code,
            elapsed,
            extra=extra,
        )
        return response

    @app.get(f"{prefix}metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
