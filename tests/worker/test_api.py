"""The HTTP API's answers to bad requests: documented status codes, and nothing stored."""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import func, select

from store.models import Job, Upload
from tests.stack import submit


def stored_counts(db) -> tuple[int, int]:
    with db.session() as session:
        return (
            session.execute(select(func.count()).select_from(Job)).scalar_one(),
            session.execute(select(func.count()).select_from(Upload)).scalar_one(),
        )


GOOD = b"Name,RT,Volume,Log P,Anchor\nGD1(36:1;O2),9.1,1000,1.5,T\n"


@pytest.mark.parametrize(
    "files, form, status, code",
    [
        (None, {}, 400, "no_file"),
        ({"file": ("empty.csv", b"")}, {}, 422, "invalid_table"),
        ({"file": ("blank.csv", b"\n\n  \n")}, {}, 422, "invalid_table"),
        ({"file": ("report.pdf", b"%PDF-1.7 binary")}, {}, 415, "unsupported_type"),
        ({"file": ("peaks.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00")}, {}, 415, "unsupported_type"),
        ({"file": ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")}, {}, 415, "unsupported_type"),
        ({"file": ("peaks.csv", b"Name;Mass\nGD1;1\n")}, {}, 422, "invalid_table"),
        ({"file": ("peaks.csv", GOOD)}, {"params": "{not json"}, 400, "malformed_parameters"),
        ({"file": ("peaks.csv", GOOD)}, {"params": "[1, 2]"}, 400, "malformed_parameters"),
        ({"file": ("peaks.csv", GOOD)}, {"params": json.dumps({"alpha": 2})}, 422, "invalid_parameters"),
        ({"file": ("peaks.csv", GOOD)}, {"params": json.dumps({"nonsense": 1})}, 422, "invalid_parameters"),
        ({"file": ("peaks.csv", GOOD + b"GX1(36:1;O2),abc,1,1,T\n")}, {}, 422, "invalid_rows"),
    ],
)
def test_bad_submissions_get_their_status_and_store_nothing(full_stack, files, form, status, code):
    before = stored_counts(full_stack.db)
    response = requests.post(f"{full_stack.live.url}/api/jobs", files=files, data=form, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert stored_counts(full_stack.db) == before


def test_invalid_rows_are_listed_with_row_column_value_and_reason(full_stack):
    content = GOOD + b"GX1(36:1;O2),abc,1,1,T\nGD1(38:1;O2),10.5,1,1,maybe\n"
    error = submit(full_stack.live.url, content).json()["error"]
    details = {(d["row"], d["column"]) for d in error["details"]}
    assert details == {(2, "Name"), (2, "RT"), (3, "Anchor")}
    assert all(d["value"] is not None and d["reason"] for d in error["details"])


def test_too_large_is_413(full_stack):
    big = GOOD + b"GD1(36:1;O2),9.1,1000,1.5,T\n" * (int(full_stack.settings.max_upload_bytes * 1.5) // 28)
    before = stored_counts(full_stack.db)
    response = requests.post(f"{full_stack.live.url}/api/jobs", files={"file": ("big.csv", big)}, timeout=120)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert stored_counts(full_stack.db) == before


def test_skip_policy_accepts_a_file_with_invalid_rows(full_stack):
    content = GOOD + b"GX1(36:1;O2),abc,1,1,T\n"
    response = submit(full_stack.live.url, content, params=json.dumps({"on_invalid_rows": "skip"}))
    assert response.status_code == 202


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/jobs/00000000-0000-0000-0000-000000000000"),
        ("get", "/api/jobs/not-a-job"),
        ("get", "/api/jobs/00000000-0000-0000-0000-000000000000/results.csv"),
        ("post", "/api/jobs/00000000-0000-0000-0000-000000000000/cancel"),
        ("post", "/api/jobs/00000000-0000-0000-0000-000000000000/retry"),
        ("delete", "/api/jobs/00000000-0000-0000-0000-000000000000"),
        ("get", "/api/nowhere"),
    ],
)
def test_unknown_jobs_and_routes_are_404_json(full_stack, method, path):
    response = getattr(requests, method)(f"{full_stack.live.url}{path}", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_conflicts_are_409(full_stack, porcine_csv):
    from tests.stack import wait_for_status

    base = full_stack.live.url
    job_id = submit(base, porcine_csv.read_bytes()).json()["id"]
    wait_for_status(base, job_id)
    assert requests.post(f"{base}/api/jobs/{job_id}/cancel", timeout=10).status_code == 409
    assert requests.post(f"{base}/api/jobs/{job_id}/retry", timeout=10).status_code == 409
    assert requests.delete(f"{base}/api/jobs/{job_id}", timeout=10).status_code == 204
    assert requests.get(f"{base}/api/jobs/{job_id}", timeout=10).status_code == 404


def test_list_filters_and_rejects_bad_filters(full_stack, porcine_csv):
    base = full_stack.live.url
    listing = requests.get(f"{base}/api/jobs", params={"status": "succeeded,failed", "limit": 5}, timeout=10)
    assert listing.status_code == 200
    body = listing.json()
    assert len(body["jobs"]) <= 5 and all(j["status"] in ("succeeded", "failed") for j in body["jobs"])
    assert requests.get(f"{base}/api/jobs", params={"status": "sleeping"}, timeout=10).status_code == 400
    assert requests.get(f"{base}/api/jobs", params={"limit": "ten"}, timeout=10).status_code == 400


def test_health_reports_database_redis_workers_and_queue(full_stack):
    health = requests.get(f"{full_stack.live.url}/api/health", timeout=10)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["mode"] == "full"
    assert body["database"]["ok"] and body["database"]["backend"] == "postgresql"
    assert body["redis"]["ok"] and body["workers"]["ok"] and body["queue_depth"] == 0
