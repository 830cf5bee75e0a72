"""Jobs started with the Analyze button, in a real browser, in both modes: the same guarantees as
API jobs, one progress channel for the bar, and a jobs page that follows every change live."""

from __future__ import annotations

import os
import re
import signal

import pytest
import requests

from analysis.synthetic import generate_extract
from tests.e2e.test_browser import JOB_URL, upload, wait_for_grid
from tests.services import wait_until
from tests.stack import slow_job_input, wait_for_status

pytestmark = pytest.mark.slow


def job_ids(app_server) -> set[str]:
    return {job["id"] for job in app_server.api("/api/jobs?limit=1000").json()["jobs"]}


def analyse_from_page(app_server, page, paths: list) -> list[str]:
    """Upload on the page, press Analyze; return the new jobs' ids (oldest first)."""
    before = job_ids(app_server)
    page.goto(app_server.url + "/")
    upload(page, [str(p) for p in paths])
    for path in paths:
        page.locator(".file-card", has_text=path.name).wait_for(timeout=60_000)
    page.click("#analyze-button")
    assert wait_until(lambda: len(job_ids(app_server) - before) == len(paths), 30, interval=0.2)
    jobs = app_server.api("/api/jobs?limit=1000").json()["jobs"]
    return [job["id"] for job in sorted(jobs, key=lambda j: j["created_at"]) if job["id"] not in before]


def test_a_page_job_whose_analysis_process_is_killed_does_not_stay_running(app_server, page, tmp_path):
    slow = tmp_path / "slow.csv"
    slow.write_bytes(slow_job_input(60_000))
    (job_id,) = analyse_from_page(app_server, page, [slow])
    running = wait_for_status(app_server.url, job_id, statuses=("running",), timeout=60)
    os.kill(int(running["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    final = wait_for_status(app_server.url, job_id, timeout=240)
    if app_server.mode == "full":  # acks late + reject on worker lost: redelivered, and it completes
        assert (final["status"], final["attempts"]) == ("succeeded", 2), app_server.log_tail()
    else:  # the local scheduler sees its process die and says so at once
        assert final["status"] == "failed" and final["error"].startswith("worker lost"), final
    page.wait_for_url(JOB_URL, timeout=60_000)  # the page still moves on to the outcome


def test_three_files_in_one_upload_share_one_bar_and_run_at_most_two_at_once(app_server, page, tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"batch-{i}.csv"
        path.write_bytes(generate_extract(40_000, seed=20 + i).to_csv_bytes())
        paths.append(path)
    jobs = analyse_from_page(app_server, page, paths)
    bar, most = [], 0

    def watch() -> bool:
        nonlocal most
        states = {j["id"]: j["status"] for j in app_server.api("/api/jobs?limit=1000").json()["jobs"]}
        most = max(most, sum(states[j] == "running" for j in jobs))
        if JOB_URL.match(page.url):
            return True
        bar.append(int(page.get_attribute("#analyze-bar .progress-bar", "aria-valuenow") or 0))
        return False

    assert wait_until(watch, 240, interval=0.2)
    assert all(wait_for_status(app_server.url, j)["status"] == "succeeded" for j in jobs)
    assert most <= 2  # LOCAL_WORKERS in embedded mode, the worker's concurrency in full mode
    assert len(set(bar)) >= 3 and bar == sorted(bar), bar  # it moved, forward only, across the files
    assert page.url.endswith(f"/jobs/{jobs[0]}")


def test_the_jobs_page_follows_api_jobs_retries_and_deletions_without_a_reload(app_server, page):
    page.goto(app_server.url + "/jobs")
    wait_for_grid(page, "jobs-grid")
    page.evaluate("window.__sameDocument = true")
    page.on("dialog", lambda dialog: dialog.accept())
    content = slow_job_input(150_000)
    submitted = [
        requests.post(f"{app_server.url}/api/jobs", files={"file": (f"busy-{i}.csv", content)}, timeout=60).json()["id"]
        for i in range(3)
    ]

    def grid() -> dict:
        rows = page.evaluate("""() => { const out = [];
            dash_ag_grid.getApi('jobs-grid').forEachNode(n => out.push(n.data)); return out; }""")
        return {row["id"]: row for row in rows}

    # The third waits behind two busy workers, and is listed as queued at once.
    assert wait_until(lambda: grid().get(submitted[2], {}).get("status") == "queued", 5, interval=0.1), grid()
    for job_id in submitted:
        requests.post(f"{app_server.url}/api/jobs/{job_id}/cancel", timeout=10)
    assert wait_until(lambda: all(grid().get(j, {}).get("status") == "cancelled" for j in submitted), 30)
    # A click on a row selects it; Retry queues it again, and the grid shows it without a reload.
    page.click(f"#jobs-grid .ag-row[row-id='{submitted[0]}'] .ag-cell[col-id='message']")
    assert page.evaluate("dash_ag_grid.getApi('jobs-grid').getSelectedRows().map(r => r.id)") == [submitted[0]]
    page.click("#jobs-retry")
    assert wait_until(lambda: grid()[submitted[0]]["status"] in ("queued", "running", "succeeded"), 15)
    requests.post(f"{app_server.url}/api/jobs/{submitted[0]}/cancel", timeout=10)
    assert wait_until(lambda: grid()[submitted[0]]["status"] in ("cancelled", "succeeded"), 30)
    # Delete the three: they leave the grid live.
    page.evaluate("dash_ag_grid.getApi('jobs-grid').deselectAll()")
    for job_id in submitted:
        page.click(f"#jobs-grid .ag-row[row-id='{job_id}'] .ag-cell[col-id='message']", modifiers=["Control"])
    page.click("#jobs-delete")
    assert wait_until(lambda: not set(submitted) & set(grid()), 15), grid()
    assert page.evaluate("window.__sameDocument === true")  # no reload happened
    assert re.search(r"/jobs$", page.url)
