"""WebSocket routes: /ws/jobs/<id> streams one job, /ws/jobs streams every job (Flask-Sock).

Messages are JSON: {"type": "snapshot", "job": {...}} first, then one message per stored
event: {"type": "progress" | "complete" | "error", "job_id", "seq", "status", "percent",
"step", "message", "ts"}, and {"type": "deleted", ...} when the job is deleted. The server
subscribes before it reads the snapshot, drops events
the snapshot already covers, and fills any gap in `seq` from the stored events, so a client
sees every event once, in order. After the terminal event the client closes first (a
server that closes right after its last send can lose that frame in browsers).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import time
from urllib.parse import urlsplit

from flask import Flask, abort, request
from flask_sock import ConnectionClosed, Sock

from dashboard.auth import current_account
from dashboard.events import RESYNC
from dashboard.services import services
from store.jobs import DELETED, count_jobs_by_status, events_after, get_job, list_jobs, snapshot
from store.models import TERMINAL_STATUSES, JobStatus

log = logging.getLogger(__name__)

NOT_SIGNED_IN = 4401
UNKNOWN_JOB = 4404  # also another user's job: a socket does not reveal that it exists
CLIENT_CLOSE_GRACE_SECONDS = 30
KIND_BY_STATUS = {
    JobStatus.SUCCEEDED: "complete",
    JobStatus.FAILED: "error",
    JobStatus.CANCELLED: "error",
    DELETED: DELETED,
}


def message_type(status: str) -> str:
    return KIND_BY_STATUS.get(status, "progress")


def origin_allowed(origin: str | None, host: str | None, allowed: list[str], scheme: str = "http") -> bool:
    """Same origin (scheme and host, as the request reached us) by default; ALLOWED_ORIGINS
    lists others. Clients that send no Origin (scripts, not browsers) are not subject to
    cross-site hijacking and are let through."""
    if not origin:
        return True
    origin = origin.rstrip("/")
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    return parts.netloc == (host or "") and parts.scheme == scheme


class SocketGate:
    """Caps the open sockets of a process, in all and per client address.

    Each open socket holds one of the web server's threads for as long as it lives, so without a
    cap a few idle clients can take every thread and HTTP stops answering. A socket over the cap
    is refused (HTTP 429) before the upgrade; the page's client then falls back to polling.
    """

    def __init__(self, total: int, per_client: int) -> None:
        self.total, self.per_client = total, per_client
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, client: str) -> bool:
        with self._lock:
            if sum(self._open.values()) >= self.total or self._open.get(client, 0) >= self.per_client:
                return False
            self._open[client] = self._open.get(client, 0) + 1
            return True

    def leave(self, client: str) -> None:
        with self._lock:
            left = self._open.get(client, 0) - 1
            if left > 0:
                self._open[client] = left
            else:
                self._open.pop(client, None)


SLOT = "rtcheck.socket_client"  # environ key: this request holds a socket slot for that client


def register(app: Flask, prefix: str) -> Sock:
    sock = Sock(app)
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": 20, "max_message_size": 65536})
    settings = app.extensions["rtcheck"].settings
    gate = SocketGate(settings.ws_max_connections, settings.ws_max_per_client)

    @app.before_request
    def check_websocket_origin():
        if request.path.startswith(f"{prefix}ws/") and not origin_allowed(
            request.headers.get("Origin"), request.host, services().settings.allowed_origins, request.scheme
        ):
            log.warning("refused WebSocket from origin %s", request.headers.get("Origin"))
            abort(403)
        if request.path.startswith(f"{prefix}ws/"):
            client = request.remote_addr or "unknown"
            if not gate.enter(client):
                log.warning("refused a WebSocket from %s: too many open", client)
                abort(429, "too many open live-update connections; the page checks every few seconds instead")
            request.environ[SLOT] = client
            # simple-websocket accepts permessage-deflate whenever offered, and its frames then fail
            # in Chromium ("Invalid frame header"). Messages are small JSON: go without compression.
            request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)

    @app.teardown_request
    def release_socket_slot(_exc):
        client = request.environ.pop(SLOT, None)
        if client is not None:
            gate.leave(client)

    @sock.route(f"{prefix}ws/jobs/<job_id>")
    def job_stream(ws, job_id):
        try:
            stream_job(ws, job_id)
        finally:
            _end_connection(ws)

    @sock.route(f"{prefix}ws/jobs")
    def all_jobs_stream(ws):
        try:
            stream_all_jobs(ws)
        finally:
            _end_connection(ws)

    return sock


def _end_connection(ws) -> None:
    """End the TCP connection with the socket: the development server would otherwise write an
    HTTP status line into it after the WebSocket session, which browsers report as a bad frame."""
    with contextlib.suppress(OSError):
        ws.sock.shutdown(socket.SHUT_RDWR)


def _send(ws, payload: dict) -> None:
    ws.send(json.dumps(payload, separators=(",", ":")))


def stream_job(ws, job_id: str) -> None:
    found = services()
    account = current_account()
    if account is None:
        ws.close(NOT_SIGNED_IN, "sign in first")
        return
    if get_job(found.db, job_id, visible_to=account) is None:
        ws.close(UNKNOWN_JOB, "unknown job")
        return
    found.hub.start()
    listener = found.hub.subscribe(job_id)
    try:
        job = get_job(found.db, job_id)
        _send(ws, {"type": "snapshot", "job": snapshot(job)})
        last = job.event_seq
        if job.status in TERMINAL_STATUSES:
            _await_client_close(ws)
            return
        while ws.connected:
            try:
                item = listener.inbox.get(timeout=1.0)
            except queue.Empty:
                continue
            if item is not RESYNC and item.get("status") == DELETED:
                _send(ws, {"type": DELETED, **item})  # no stored history is left to fill a gap from
                _await_client_close(ws)
                return
            if item is RESYNC or item.get("seq", 0) > last + 1:
                pending = [e.to_dict() for e in events_after(found.db, job_id, last)]
            elif item["seq"] <= last:
                continue
            else:
                pending = [item]
            for event in pending:
                _send(ws, {"type": message_type(event["status"]), **event})
                last = event["seq"]
                if event["status"] in TERMINAL_STATUSES:
                    _await_client_close(ws)
                    return
    except ConnectionClosed:
        pass
    finally:
        found.hub.unsubscribe(listener)


def stream_all_jobs(ws, limit: int = 200) -> None:
    found = services()
    account = current_account()
    if account is None:
        ws.close(NOT_SIGNED_IN, "sign in first")
        return
    found.hub.start()
    listener = found.hub.subscribe(None)
    visible = VisibleJobs(found.db, account)
    try:
        _send(ws, _all_jobs_snapshot(found, limit, account))
        while ws.connected:
            try:
                item = listener.inbox.get(timeout=1.0)
            except queue.Empty:
                continue
            if item is RESYNC:
                _send(ws, _all_jobs_snapshot(found, limit, account))
            elif visible.includes(item["job_id"], deleted=item.get("status") == DELETED):
                _send(ws, {"type": message_type(item["status"]), **item})
    except ConnectionClosed:
        pass
    finally:
        found.hub.unsubscribe(listener)


class VisibleJobs:
    """Whether each job an event names may be shown to the socket's account: asked of the store
    once per job (a job's owner does not change), remembered for the socket's life."""

    def __init__(self, db, account) -> None:
        self.db, self.account, self.known = db, account, {}

    def includes(self, job_id: str, deleted: bool = False) -> bool:
        if self.account.is_admin:
            return True
        if job_id not in self.known:
            if deleted:  # gone already: shown only to a socket that knew the job
                return False
            self.known[job_id] = get_job(self.db, job_id, visible_to=self.account) is not None
        return self.known[job_id]


def _all_jobs_snapshot(found, limit: int, account) -> dict:
    jobs = [snapshot(job, filename) for job, filename in list_jobs(found.db, limit=limit, visible_to=account)]
    return {"type": "snapshot", "jobs": jobs, "counts": count_jobs_by_status(found.db, visible_to=account)}


def _await_client_close(ws) -> None:
    """Wait for the client to close after a terminal message (or give up after a grace period)."""
    deadline = time.monotonic() + CLIENT_CLOSE_GRACE_SECONDS
    while ws.connected and time.monotonic() < deadline:
        try:
            ws.receive(timeout=1.0)
        except ConnectionClosed:
            return
