"""Accounts on the full stack (PostgreSQL, Redis, Celery workers, a live server), sign-in required:
a job records who submitted it, and its stream is visible to exactly those who may see the job."""

from __future__ import annotations

import contextlib
import json
import struct
import time

import pytest
import requests
import websocket

from store import accounts
from store.jobs import get_job
from tests.worker.conftest import fresh_stack

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def stack(postgres_admin_url, private_redis, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("accounts")
    with fresh_stack(postgres_admin_url, private_redis.url, tmp, label="accounts", auth_required=True) as built:
        tokens = {}
        for name, group in (("alice", "lab1"), ("carol", "lab1"), ("bob", None)):
            accounts.add_user(built.db, name, PASSWORD, group=group)
            tokens[name] = accounts.create_token(built.db, name)[1]
        built.tokens = tokens
        yield built


def bearer(stack, name: str) -> dict:
    return {"Authorization": f"Bearer {stack.tokens[name]}"}


def submit_as(stack, name: str, data: bytes) -> str:
    response = requests.post(
        f"{stack.live.url}/api/jobs", files={"file": ("peaks.csv", data)}, headers=bearer(stack, name), timeout=60
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def close_code(url: str, **options) -> int:
    connection = websocket.create_connection(url, timeout=10, **options)
    try:
        opcode, frame = connection.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE, frame.data  # nothing before the close
        return struct.unpack("!H", frame.data[:2])[0]
    finally:
        connection.close()


def test_the_celery_path_records_the_submitter_and_streams_only_to_those_who_may_see(stack, tiny_csv):
    job_id = submit_as(stack, "alice", tiny_csv.read_bytes())
    alice = accounts.get_account(stack.db, "alice")
    assert get_job(stack.db, job_id).owner_id == alice.id
    url = f"{stack.live.ws_url}/ws/jobs/{job_id}"
    assert close_code(url) == 4401  # no credentials
    assert close_code(url, header=[f"Authorization: Bearer {stack.tokens['bob']}"]) == 4404
    # The group member follows it to the end like the owner would
    connection = websocket.create_connection(
        url, timeout=120, header=[f"Authorization: Bearer {stack.tokens['carol']}"]
    )
    try:
        first = json.loads(connection.recv())
        assert first["type"] == "snapshot" and first["job"]["id"] == job_id
        status = first["job"]["status"]
        while status not in ("succeeded", "failed", "cancelled"):
            status = json.loads(connection.recv())["status"]
        assert status == "succeeded"
    finally:
        connection.close()
    token = stack.tokens["alice"]
    assert requests.get(f"{stack.live.url}/api/jobs/{job_id}/results.csv", timeout=30).status_code == 401
    answer = requests.get(
        f"{stack.live.url}/api/jobs/{job_id}/results.csv", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert answer.status_code == 200 and answer.content.startswith(b"row,")


def test_the_all_jobs_stream_carries_only_visible_jobs(stack, tiny_csv):
    assert close_code(f"{stack.live.ws_url}/ws/jobs") == 4401
    earlier = submit_as(stack, "alice", tiny_csv.read_bytes())
    listeners = {
        name: websocket.create_connection(
            f"{stack.live.ws_url}/ws/jobs", timeout=5, header=[f"Authorization: Bearer {stack.tokens[name]}"]
        )
        for name in ("bob", "carol")
    }
    try:
        snapshots = {name: json.loads(ws.recv()) for name, ws in listeners.items()}
        assert all(s["type"] == "snapshot" for s in snapshots.values())
        assert snapshots["bob"]["jobs"] == [] and sum(snapshots["bob"]["counts"].values()) == 0
        assert earlier in {job["id"] for job in snapshots["carol"]["jobs"]}
        for ws in listeners.values():  # bob hears nothing: do not wait seconds on him per event of carol's
            ws.settimeout(0.2)
        job_id = submit_as(stack, "alice", tiny_csv.read_bytes())
        seen = {name: [] for name in listeners}
        deadline = time.monotonic() + 180  # generous: a correctness check on a shared machine
        while time.monotonic() < deadline and not any(
            e.get("status") == "succeeded" for e in seen["carol"] if e.get("job_id") == job_id
        ):
            for name, ws in listeners.items():
                with contextlib.suppress(websocket.WebSocketTimeoutException):
                    seen[name].append(json.loads(ws.recv()))
        assert any(e.get("job_id") == job_id and e.get("status") == "succeeded" for e in seen["carol"]), seen
        assert not [e for e in seen["bob"] if e.get("job_id") == job_id]
    finally:
        for ws in listeners.values():
            ws.close()
