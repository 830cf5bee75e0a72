"""The API against the whole stack: accepted jobs are dispatched, conflicts, health.

Validation answers need no services: tests/dashboard/test_api.py checks them on a test client."""

from __future__ import annotations

import json

import requests

from tests.dashboard.test_api import GOOD
from tests.stack import submit


def test_skip_policy_accepts_a_file_with_invalid_rows(full_stack):
    content = GOOD + b"GX1(36:1;O2),abc,1,1,T\n"
    response = submit(full_stack.live.url, content, params=json.dumps({"on_invalid_rows": "skip"}))
    assert response.status_code == 202


def test_conflicts_are_409(full_stack, porcine_csv):
    from tests.stack import wait_for_status

    base = full_stack.live.url
    job_id = submit(base, porcine_csv.read_bytes()).json()["id"]
    wait_for_status(base, job_id)
    assert requests.post(f"{base}/api/jobs/{job_id}/cancel", timeout=10).status_code == 409
    assert requests.post(f"{base}/api/jobs/{job_id}/retry", timeout=10).status_code == 409
    assert requests.delete(f"{base}/api/jobs/{job_id}", timeout=10).status_code == 204
    assert requests.get(f"{base}/api/jobs/{job_id}", timeout=10).status_code == 404


def test_health_reports_database_redis_workers_and_queue(full_stack):
    health = requests.get(f"{full_stack.live.url}/api/health", timeout=10)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["mode"] == "full"
    assert body["database"]["ok"] and body["database"]["backend"] == "postgresql"
    assert body["redis"]["ok"] and body["workers"]["ok"] and body["queue_depth"] == 0
