"""Embedded mode (no Redis, SQLite, local process pool): the same submit → stream → results."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import requests
import websocket

from settings import Settings
from tests.services import process_alive, wait_until
from tests.stack import LiveServer, read_stream, slow_job_input, submit, wait_for_status

ROOT = Path(__file__).resolve().parents[2]


def test_embedded_submit_stream_and_results(tmp_path):
    from dashboard.factory import create_app

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        redis_url="",
        data_dir=tmp_path,
        app_env="test",
        local_workers=1,
        auth_required=False,
    )
    app = create_app(settings, start_background=True)
    runner = app.server.extensions["rtcheck"].dispatcher.runner
    try:
        with LiveServer(app.server) as live:
            # Large enough (a few seconds) that the socket opens while the job still runs.
            response = submit(live.url, slow_job_input(40_000), "generated.csv")
            assert response.status_code == 202
            job_id = response.json()["id"]
            connection = websocket.create_connection(f"{live.ws_url}/ws/jobs/{job_id}", timeout=120)
            messages = [json.loads(connection.recv())]
            assert messages[0]["type"] == "snapshot"
            while messages[-1]["type"] not in ("complete", "error") and not (
                messages[-1]["type"] == "snapshot" and messages[-1]["job"]["status"] == "succeeded"
            ):
                messages.append(json.loads(connection.recv()))
            connection.close()
            seqs = [m["seq"] for m in messages[1:]]
            assert seqs == list(range(messages[0]["job"]["seq"] + 1, messages[0]["job"]["seq"] + 1 + len(seqs)))
            assert [m["type"] for m in messages[1:-1]] == ["progress"] * (len(messages) - 2)
            assert len(messages) > 3 and messages[-1]["type"] == "complete"
            state = wait_for_status(live.url, job_id)
            assert state["status"] == "succeeded" and state["worker"].startswith("local:")
            csv = requests.get(f"{live.url}/api/jobs/{job_id}/results.csv", timeout=30)
            assert len(pd.read_csv(io.BytesIO(csv.content))) == 40_000
            assert read_stream(live.ws_url, job_id)[0]["job"]["status"] == "succeeded"
            health = requests.get(f"{live.url}/api/health", timeout=10).json()
            assert health["mode"] == "embedded" and health["database"]["backend"] == "sqlite"
    finally:
        runner.shutdown()


ORPHAN_SCRIPT = """
import sys, time
from settings import Settings
from store.db import Database
from store.migrate import upgrade
from store.jobs import create_job, get_job
from tests.stack import slow_job_input
from worker.context import WorkerContext
from worker.local import LocalRunner
from worker.progress import Publisher
if __name__ == "__main__":
    settings = Settings(database_url=sys.argv[1], redis_url="", data_dir=sys.argv[2], app_env="test", local_workers=2)
    db = Database(settings.database_url)
    upgrade(db)
    data = slow_job_input(200_000)
    jobs = [create_job(db, filename="slow.csv", content=data, sha256="0" * 64, parameters={}).job_id for _ in range(2)]
    LocalRunner(settings, WorkerContext(settings, db, Publisher())).start()
    while not all(get_job(db, j).status == "running" for j in jobs):
        time.sleep(0.2)
    print(" ".join(get_job(db, j).worker.split(":")[1] for j in jobs), flush=True)
    time.sleep(600)
"""


def test_analysis_processes_end_when_the_web_process_is_killed(tmp_path):
    """A web process killed outright must not leave its analysis processes behind."""
    script = tmp_path / "host.py"
    script.write_text(ORPHAN_SCRIPT)
    host = subprocess.Popen(
        [sys.executable, str(script), f"sqlite:///{tmp_path / 'app.db'}", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        children = [int(pid) for pid in host.stdout.readline().split()]
        assert children and host.pid not in children
        assert all(process_alive(pid) for pid in children)
    finally:
        host.kill()
        host.wait(timeout=30)
    assert wait_until(lambda: not any(process_alive(pid) for pid in children), 15), children
