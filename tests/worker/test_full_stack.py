"""Jobs through the real stack: HTTP API → PostgreSQL → Redis → Celery worker → WebSocket."""

from __future__ import annotations

import io
import json
import struct

import openpyxl
import pandas as pd
import requests
import websocket

from store.jobs import events_after, get_job
from tests.stack import control, read_stream, submit, wait_for_status


def test_submit_stream_and_results(full_stack, porcine_csv):
    base = full_stack.live.url
    # Hold the queue so the stream is open before the worker starts: every event is then seen live.
    control(full_stack.celery, "cancel_consumer", "analyses", reply=True)
    try:
        response = submit(base, porcine_csv.read_bytes(), "porcine.csv")
        assert response.status_code == 202
        body = response.json()
        assert body["status"] == "queued"
        assert set(body["links"]) == {"self", "results", "ws", "page"}
        connection = websocket.create_connection(f"{full_stack.live.ws_url}{body['links']['ws']}", timeout=60)
        snapshot = json.loads(connection.recv())
    finally:
        control(full_stack.celery, "add_consumer", "analyses", reply=True)
    assert snapshot["type"] == "snapshot" and snapshot["job"]["status"] == "queued"
    messages = []
    while True:
        message = json.loads(connection.recv())
        messages.append(message)
        if message["type"] in ("complete", "error"):
            break
    connection.close()
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(snapshot["job"]["seq"] + 1, snapshot["job"]["seq"] + 1 + len(messages)))
    assert [m["type"] for m in messages[:-1]] == ["progress"] * (len(messages) - 1)
    steps = [m["step"] for m in messages]
    for step in ("loading", "validating", "fragments", "model", "outliers", "checks", "saving", "done"):
        assert step in steps
    percents = [m["percent"] for m in messages]
    assert percents == sorted(percents) and percents[-1] == 100
    assert messages[-1]["type"] == "complete" and messages[-1]["status"] == "succeeded"

    job_id = body["id"]
    result = requests.get(f"{base}/api/jobs/{job_id}/results", timeout=30).json()
    assert len(result["rows"]) == 323
    assert result["metrics"]["loo_rmsep"] > 0
    csv = requests.get(f"{base}/api/jobs/{job_id}/results.csv", timeout=30)
    assert "attachment" in csv.headers["Content-Disposition"]
    assert len(pd.read_csv(io.BytesIO(csv.content))) == 323
    xlsx = requests.get(f"{base}/api/jobs/{job_id}/results.xlsx", timeout=30)
    assert openpyxl.load_workbook(io.BytesIO(xlsx.content))["rows"].max_row == 324
    # The stream's events are exactly the stored ones.
    stored = [e.seq for e in events_after(full_stack.db, job_id, snapshot["job"]["seq"])]
    assert stored == seqs


def test_a_finished_job_streams_its_final_snapshot(full_stack, porcine_csv):
    base = full_stack.live.url
    job_id = submit(base, porcine_csv.read_bytes()).json()["id"]
    wait_for_status(base, job_id)
    messages = read_stream(full_stack.live.ws_url, job_id)
    assert len(messages) == 1 and messages[0]["job"]["status"] == "succeeded"


def test_ten_jobs_at_once_on_two_processes_all_succeed_none_twice(full_stack):
    from analysis.synthetic import generate_extract

    base = full_stack.live.url
    # Large enough (about half a second each) that the two processes work side by side.
    ids = [
        submit(base, generate_extract(8000, seed=s).to_csv_bytes(), f"batch-{s}.csv").json()["id"] for s in range(10)
    ]
    for job_id in ids:
        assert wait_for_status(base, job_id)["status"] == "succeeded"
    for job_id in ids:
        job = get_job(full_stack.db, job_id)
        assert job.attempts == 1
        running = [e for e in events_after(full_stack.db, job_id, 0) if e.step == "starting"]
        assert len(running) == 1
    workers = {get_job(full_stack.db, job_id).worker for job_id in ids}
    assert len(workers) == 2  # both processes took part


def test_a_task_that_raises_fails_the_job_with_the_reason(full_stack, porcine_csv):
    base = full_stack.live.url
    job_id = submit(base, porcine_csv.read_bytes(), "explode.csv").json()["id"]
    state = wait_for_status(base, job_id)
    assert state["status"] == "failed"
    assert "injected fault" in state["error"]
    messages = read_stream(full_stack.live.ws_url, job_id)
    assert messages[-1]["job"]["status"] == "failed"
    assert "injected fault" in messages[-1]["job"]["message"]
    assert requests.get(f"{base}/api/jobs/{job_id}/results", timeout=10).status_code == 409


def close_frame(url: str, **options) -> tuple[int, str]:
    """Connect and read the close frame the server sends: (code, reason)."""
    connection = websocket.create_connection(url, timeout=10, **options)
    try:
        opcode, frame = connection.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        return struct.unpack("!H", frame.data[:2])[0], frame.data[2:].decode()
    finally:
        connection.close()


def test_unknown_job_stream_closes_with_4404(full_stack):
    code, reason = close_frame(f"{full_stack.live.ws_url}/ws/jobs/00000000-0000-0000-0000-000000000000")
    assert (code, reason) == (4404, "unknown job")
    code, _ = close_frame(f"{full_stack.live.ws_url}/ws/jobs/not-even-a-uuid")
    assert code == 4404


def test_a_foreign_origin_is_refused_before_the_handshake(full_stack, porcine_csv):
    job_id = submit(full_stack.live.url, porcine_csv.read_bytes()).json()["id"]
    try:
        websocket.create_connection(
            f"{full_stack.live.ws_url}/ws/jobs/{job_id}", timeout=10, origin="http://evil.example"
        )
        raise AssertionError("the handshake should have been refused")
    except websocket.WebSocketBadStatusException as exc:
        assert exc.status_code == 403
    same_origin = read_stream(full_stack.live.ws_url, job_id, origin=full_stack.live.url)
    assert same_origin[0]["type"] == "snapshot"


def test_streams_are_not_compressed_even_when_the_client_offers_it(full_stack):
    """Browsers offer permessage-deflate; frames must still be plain (compressed ones broke in Chromium)."""
    offer = ["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"]
    connection = websocket.create_connection(f"{full_stack.live.ws_url}/ws/jobs", header=offer, timeout=10)
    try:
        assert not connection.getheaders().get("sec-websocket-extensions")
        opcode, frame = connection.recv_data_frame(True)
        assert opcode == websocket.ABNF.OPCODE_TEXT and frame.rsv1 == 0
        assert json.loads(frame.data)["type"] == "snapshot"
    finally:
        connection.close()
