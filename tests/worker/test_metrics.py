"""/metrics follows the jobs, the workers' results and the sockets of a running stack.

The OpenAPI document's tests need no stack: tests/dashboard/test_openapi.py.
"""

from __future__ import annotations

import re
import uuid

import requests
import websocket

from tests.stack import submit, wait_for_status


def metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name}{labels} missing"
    return float(match.group(1))


def test_metrics_follow_the_jobs_and_the_sockets(full_stack, porcine_csv):
    url = f"{full_stack.live.url}/metrics"
    before = requests.get(url, timeout=10)
    assert before.headers["Content-Type"].startswith("text/plain")
    succeeded_before = metric(before.text, "rtcheck_jobs", '{status="succeeded"}')
    durations_before = metric(before.text, "rtcheck_job_duration_seconds_count")
    accepted_before = (
        metric(before.text, "rtcheck_http_requests_total", '{method="POST",status="202"}')
        if 'status="202"' in before.text
        else 0.0
    )
    job_id = submit(full_stack.live.url, porcine_csv.read_bytes(), f"{uuid.uuid4().hex}.csv").json()["id"]
    wait_for_status(full_stack.live.url, job_id)
    socket = websocket.create_connection(f"{full_stack.live.ws_url}/ws/jobs", timeout=10)
    socket.recv()
    try:
        after = requests.get(url, timeout=10).text
    finally:
        socket.close()
    assert metric(after, "rtcheck_jobs", '{status="succeeded"}') == succeeded_before + 1
    assert metric(after, "rtcheck_job_duration_seconds_count") == durations_before + 1
    assert metric(after, "rtcheck_http_requests_total", '{method="POST",status="202"}') == accepted_before + 1
    assert metric(after, "rtcheck_websocket_connections") >= 1
    assert metric(after, "rtcheck_queue_depth") == 0
