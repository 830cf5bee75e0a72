"""Hostile uploads against the running server (`python app.py`): each file of the corpus is
refused with a message naming the bound it broke, or, when it is a valid table carrying markup
and formulas, analysed with that text shown inert; meanwhile a health probe keeps getting
answers and the web process does not keep what the checks allocated.

Figures (check times, the probe's latencies, memory) are printed by benchmarks/hostile_uploads.py;
no timing is asserted here.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import requests

from tests import hostile_files as hostile
from tests.e2e.conftest import start_embedded
from tests.e2e.test_browser import JOB_URL, upload

pytestmark = pytest.mark.slow

UPLOAD_LIMIT_MB = 40


def resident_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024


def corpus():
    yield "oversize", "big.csv", hostile.rows_csv(1_600_000), 413, f"the limit is {UPLOAD_LIMIT_MB} MB"
    yield "1M rows", "million.csv", hostile.rows_csv(1_000_001), 422, "more than 1,000,000 data rows"
    yield "10,000 columns", "wide.csv", hostile.wide_csv(10_000, n_rows=200), 422, "at most 5,000 are read"
    yield "a 1 MB cell", "cell.csv", hostile.long_cell_csv(1024 * 1024), 422, "32,767 characters"
    yield "zip bomb", "bomb.xlsx", hostile.zip_bomb_xlsx(200), 422, "zip bomb"
    yield "entity expansion", "lol.xlsx", hostile.entity_expansion_xlsx(), 422, "declares entities"


class HealthProbe(threading.Thread):
    """Asks /api/health every 0.1 s and keeps every answer's status (or the error)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.answers, self.stop = url, [], threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.answers.append(requests.get(f"{self.url}/api/health", timeout=10).status_code)
            except requests.RequestException as exc:
                self.answers.append(repr(exc))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_embedded(tmp_path_factory.mktemp("hostile"), max_upload_mb=UPLOAD_LIMIT_MB)
    yield server
    server.stop()


def test_each_hostile_file_is_refused_naming_its_bound_while_health_answers(server):
    web_pid = server.processes[0].pid
    before = resident_mb(web_pid)
    probe = HealthProbe(server.url)
    probe.start()
    outcomes = {}
    try:
        for label, name, data, status, fragment in corpus():
            response = requests.post(f"{server.url}/api/jobs", files={"file": (name, data)}, timeout=180)
            outcomes[label] = (response.status_code, response.json()["error"]["message"])
            assert response.status_code == status, (label, response.text[:300])
            assert fragment in response.json()["error"]["message"], (label, response.text[:300])
            del data
    finally:
        probe.stop.set()
        probe.join()
    assert len(probe.answers) > 10 and set(probe.answers) == {200}, probe.answers
    # Nothing was stored, and the web process kept none of what the checks allocated (the checks
    # ran in their own processes; the uploads themselves pass through its memory)
    assert requests.get(f"{server.url}/api/jobs", timeout=30).json()["jobs"] == []
    assert resident_mb(web_pid) - before < 300, (before, resident_mb(web_pid), outcomes)


def test_markup_in_a_file_name_and_in_cells_is_shown_as_text_and_formulas_are_neutralised(server, page, tmp_path):
    script = "<script>window.pwned = 'cell'</script>"
    formula = '=HYPERLINK("http://evil.example","x")'
    path = tmp_path / "<img src=x onerror=window.pwned=1>.csv"
    path.write_bytes(hostile.hostile_text_csv(script, formula))
    page.goto(server.url + "/")
    upload(page, str(path))
    page.locator(".file-card", has_text="<img src=x onerror=window.pwned=1>.csv").wait_for()
    page.click("#analyze-button")
    page.wait_for_url(JOB_URL, timeout=90_000)
    page.wait_for_selector("#main-graph .js-plotly-plot", timeout=90_000)
    assert "<img src=x onerror=window.pwned=1>.csv" in page.inner_text("h2, h1, .job-title, body")
    page.goto(server.url + "/jobs")
    page.get_by_text("<img src=x onerror=window.pwned=1>.csv").first.wait_for()
    assert page.evaluate("window.pwned") is None
    assert page.locator("img[src=x]").count() == 0
    job_id = requests.get(f"{server.url}/api/jobs", timeout=30).json()["jobs"][0]["id"]
    csv_text = requests.get(f"{server.url}/api/jobs/{job_id}/results.csv", timeout=30).text
    assert f"'{formula}" in csv_text.replace('""', '"') and script in csv_text
