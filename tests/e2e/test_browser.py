"""What analysts do, in a real browser, in both modes: upload, analyse, explore, download."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import requests

from analysis.synthetic import generate_extract
from tests.e2e.conftest import CuttableProxy
from tests.services import wait_until

pytestmark = pytest.mark.slow

JOB_URL = re.compile(r".*/jobs/[0-9a-f-]{36}(\?.*)?$")


RECORD_SOCKETS = """
window.__wsFrames = [];
(function () {
    const Native = window.WebSocket;
    function Recording(url, protocols) {
        const socket = new Native(url, protocols);
        socket.addEventListener("message", function (event) {
            try { window.__wsFrames.push(Object.assign({url: url}, JSON.parse(event.data))); } catch (error) {}
        });
        return socket;
    }
    Recording.prototype = Native.prototype;
    ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach(function (k) { Recording[k] = Native[k]; });
    window.WebSocket = Recording;
})();
"""


def follow_sockets(page):
    """Every JSON message the page's WebSockets receive (recorded in the page), with the socket's URL.

    Returns a function that reads them; a full page load starts the record afresh.
    """
    page.add_init_script(RECORD_SOCKETS)
    return lambda: page.evaluate("window.__wsFrames || []")


def wait_for_grid(page, grid_id: str, timeout: float = 30_000) -> None:
    """dash_ag_grid.getApi throws until the grid is ready, so ask politely."""
    page.wait_for_function(
        f"""() => {{ try {{ return !!dash_ag_grid.getApi('{grid_id}'); }}
                                      catch (error) {{ return false; }} }}""",
        timeout=timeout,
    )


def grid_rows(page, grid_id: str) -> int:
    return page.evaluate(f"dash_ag_grid.getApi('{grid_id}').getDisplayedRowCount()")


def selected_rows(page, grid_id: str) -> list[int]:
    return page.evaluate(f"dash_ag_grid.getApi('{grid_id}').getSelectedRows().map(r => r.row)")


def upload(page, paths) -> None:
    page.set_input_files("#upload input[type=file]", paths)


def test_sample_from_upload_to_results_and_downloads(app_server, page, porcine_csv):
    frames = follow_sockets(page)
    page.goto(app_server.url + "/")
    upload(page, str(porcine_csv))
    card = page.locator(".file-card", has_text="porcine_brain_gangliosides.csv")
    card.wait_for()
    assert "323 rows" in card.inner_text()
    assert card.locator("table tbody tr").count() == 8  # the preview, before anything is queued
    assert app_server.api("/api/jobs").json()["jobs"] == []
    page.click("#analyze-button")
    page.wait_for_url(JOB_URL, timeout=90_000)  # the page moves to the results by itself
    job_id = re.search(r"/jobs/([0-9a-f-]{36})", page.url).group(1)
    page.wait_for_selector("#main-graph .js-plotly-plot", timeout=60_000)
    wait_for_grid(page, "rows-grid")
    assert grid_rows(page, "rows-grid") == 323
    # The upload page's bar was fed by the jobs stream: the job's end arrived over that socket.
    streamed = [f for f in frames() if f["url"].endswith("/ws/jobs")]
    final = [f for f in streamed if f.get("job_id") == job_id and f.get("status") == "succeeded"] + [
        job for f in streamed for job in f.get("jobs", []) if job["id"] == job_id and job["status"] == "succeeded"
    ]
    assert final, streamed
    # Clicking a point selects its row, and the table scrolls to it.
    page.goto(f"{app_server.url}/jobs/{job_id}?head=GD1")
    page.wait_for_selector("#main-graph .js-plotly-plot")
    wait_for_grid(page, "rows-grid")
    row = click_first_point(page)
    assert wait_until(lambda: selected_rows(page, "rows-grid") == [row], 15)
    # Downloads open, hold every row, and are named after the input file.
    with page.expect_download() as csv_download:
        page.click("a[href$='results.csv']")
    csv = pd.read_csv(csv_download.value.path())
    assert len(csv) == 323 and csv["row"].tolist() == list(range(1, 324))
    with page.expect_download() as xlsx_download:
        page.click("a[href$='results.xlsx']")
    workbook = openpyxl.load_workbook(io.BytesIO(Path(xlsx_download.value.path()).read_bytes()), read_only=True)
    assert workbook["rows"].max_row == 324
    with page.expect_download() as json_download:
        page.click("a[href$='results.json']")
    assert len(json.loads(Path(json_download.value.path()).read_bytes())["rows"]) == 323
    names = [d.value.suggested_filename for d in (csv_download, xlsx_download, json_download)]
    assert names == [f"porcine_brain_gangliosides-rt-check.{kind}" for kind in ("csv", "xlsx", "json")]


def click_first_point(page) -> int:
    """Click, with the mouse, the first peak marker of the plot; return its row number."""
    target = page.evaluate("""() => {
        const gd = document.querySelector('#main-graph .js-plotly-plot');
        const layout = gd._fullLayout;
        for (const trace of gd._fullData) {
            if (!trace.mode || trace.mode.indexOf('markers') < 0) continue;
            if (!trace.customdata || trace.visible !== true) continue;
            if (!trace.legendgroup || trace.legendgroup.indexOf('status:') !== 0) continue;
            for (let i = 0; i < trace.x.length; i++) {
                if (trace.x[i] === null || trace.y[i] === null) continue;
                const xa = layout[trace.xaxis.replace('x', 'xaxis')], ya = layout[trace.yaxis.replace('y', 'yaxis')];
                const box = gd.getBoundingClientRect();
                return {x: box.left + xa._offset + xa.d2p(trace.x[i]), y: box.top + ya._offset + ya.d2p(trace.y[i]),
                        row: trace.customdata[i][0]};
            }
        }
        return null;
    }""")
    assert target, "no clickable point"
    page.mouse.click(target["x"], target["y"])
    return int(target["row"])


def test_progress_reaches_the_page_through_the_socket(app_server, page, tmp_path):
    """A job long enough to watch: the bar advances on the stream's progress messages."""
    big = tmp_path / "generated.csv"
    big.write_bytes(generate_extract(60_000, seed=5).to_csv_bytes())
    frames = follow_sockets(page)
    page.goto(app_server.url + "/")
    upload(page, str(big))
    page.locator(".file-card", has_text="generated.csv").wait_for(timeout=60_000)
    page.click("#analyze-button")
    seen = []
    wait_until(
        lambda: (
            seen.append(page.get_attribute("#analyze-bar .progress-bar", "aria-valuenow")) or JOB_URL.match(page.url)
        ),
        120,
        interval=0.1,
    )
    progress = [f for f in frames() if f.get("type") == "progress"]
    assert len(progress) >= 3, frames()
    percents = [f["percent"] for f in progress]
    assert percents == sorted(percents)
    values = [int(v) for v in seen if v not in (None, "")]
    assert len(set(values)) >= 3 and values == sorted(values)  # the bar moved, forward only
    page.wait_for_url(JOB_URL, timeout=120_000)


def test_a_malformed_file_gets_a_readable_report_and_nothing_is_queued(app_server, page, tmp_path):
    bad = tmp_path / "broken.csv"
    bad.write_text("Name,RT,Volume,Log P,Anchor\nGD1(36:1;O2),9.1,1000,1.5,T\nGX1(36:1;O2),abc,1000,1.5,maybe\n")
    page.goto(app_server.url + "/")
    upload(page, str(bad))
    card = page.locator(".file-card", has_text="broken.csv")
    card.wait_for()
    report = card.locator("table.validation-report").inner_text()
    for expected in ("unknown sialic letter 'X'", "not a number", "expected T/F", "2"):
        assert expected in report
    assert page.is_disabled("#analyze-button")
    unreadable = tmp_path / "picture.csv"
    unreadable.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    upload(page, str(unreadable))
    page.locator(".file-card", has_text="picture.csv").wait_for()
    assert "binary" in page.locator(".file-card", has_text="picture.csv").inner_text()
    assert app_server.api("/api/jobs").json()["jobs"] == [] or all(
        j["filename"] not in ("broken.csv", "picture.csv") for j in app_server.api("/api/jobs").json()["jobs"]
    )


def test_two_jobs_at_once_show_live_on_the_jobs_page(app_server, page, porcine_csv, tmp_path):
    second = tmp_path / "second.csv"
    second.write_bytes(generate_extract(20_000, seed=8).to_csv_bytes())
    before = {job["id"] for job in app_server.api("/api/jobs?limit=1000").json()["jobs"]}
    page.goto(app_server.url + "/")
    upload(page, [str(porcine_csv), str(second)])
    page.locator(".file-card", has_text="second.csv").wait_for(timeout=60_000)
    page.click("#analyze-button")
    page.click("a.nav-link:has-text('Jobs')")
    page.wait_for_url(re.compile(r".*/jobs$"))
    wait_for_grid(page, "jobs-grid")
    statuses_seen = set()

    def both_listed_and_done() -> bool:
        rows = page.evaluate("""() => { const out = [];
            dash_ag_grid.getApi('jobs-grid').forEachNode(n => out.push(n.data)); return out; }""")
        mine = [r for r in rows if r["id"] not in before]
        statuses_seen.update(r["status"] for r in mine)
        return len(mine) == 2 and all(r["status"] == "succeeded" for r in mine)

    assert wait_until(both_listed_and_done, 120, interval=0.2)
    assert statuses_seen & {"queued", "running"}  # seen while they ran, not only at the end
    assert "live" in page.inner_text("#jobs-transport")
    assert JOB_URL.match(page.url) is None  # finishing did not pull the user off the page they chose


def test_the_page_survives_its_socket_being_cut(app_server, page, tmp_path):
    content = generate_extract(50_000, seed=9).to_csv_bytes()  # several seconds: time to watch it run
    job_id = requests.post(f"{app_server.url}/api/jobs", files={"file": ("long.csv", content)}, timeout=120).json()[
        "id"
    ]
    proxy = CuttableProxy(int(app_server.url.rsplit(":", 1)[1]))
    try:
        frames = follow_sockets(page)
        page.goto(f"http://127.0.0.1:{proxy.port}/jobs/{job_id}")
        assert wait_until(lambda: any(f.get("type") == "progress" for f in frames()), 90, interval=0.1)
        assert proxy.cut() >= 1
        page.wait_for_selector("#main-graph .js-plotly-plot", timeout=180_000)  # the final state, in place
        snapshots = [f for f in frames() if f.get("type") == "snapshot"]
        assert len(snapshots) >= 2  # it reconnected and started again from a snapshot
    finally:
        proxy.close()


@pytest.mark.parametrize("path", ["/", "/jobs", "/methods", "/jobs/00000000-0000-0000-0000-000000000000"])
def test_every_page_loads_without_console_errors_or_alerts(app_server, page, path):
    """A first visit (a fresh browser) shows no error: nothing was uploaded or clicked yet."""
    page.goto(app_server.url + path)
    page.wait_for_selector("#_pages_content", timeout=30_000)
    page.wait_for_timeout(2500)
    assert page.locator(".dash-fe-error__title").count() == 0  # no Dash error overlay either
    alerts = page.locator("#upload-alert .alert, #global-alert .alert, #jobs-alert .alert")
    assert alerts.count() == 0, alerts.all_inner_texts()


def test_tabs_build_on_demand_and_the_address_keeps_the_view(app_server, page, porcine_csv):
    job_id = requests.post(
        f"{app_server.url}/api/jobs", files={"file": ("porcine.csv", porcine_csv.read_bytes())}, timeout=60
    ).json()["id"]
    assert wait_until(lambda: app_server.api(f"/api/jobs/{job_id}").json()["status"] == "succeeded", 60)
    page.goto(f"{app_server.url}/jobs/{job_id}")
    wait_for_grid(page, "rows-grid")
    assert page.locator("text=Coefficients").count() == 0  # the Model tab is not built yet
    page.click("a.nav-link:has-text('Model')")
    page.wait_for_selector("text=Coefficients")
    assert "tab=model" in page.url
    page.click("a.nav-link:has-text('Peaks')")
    wait_for_grid(page, "rows-grid")
    page.check("#plot-tabs input[value='residuals']")
    page.wait_for_function("() => window.location.search.includes('plot=residuals')")
    page.reload()
    page.wait_for_selector("#main-graph .js-plotly-plot")
    assert page.is_checked("#plot-tabs input[value='residuals']")
    assert "Residuals" in page.inner_text("#main-graph")


def test_a_foreign_host_name_is_refused_in_both_modes(app_server):
    """A DNS-rebinding Host (a foreign name pointed at this machine) is refused; the server
    answers only to its trusted hosts (ALLOWED_HOSTS, by default the loopback names)."""
    response = requests.get(f"{app_server.url}/api/health", headers={"Host": "attacker.example"}, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == "host_not_allowed"
    assert requests.get(f"{app_server.url}/api/health", timeout=10).status_code == 200


def test_an_ms_dial_export_shows_its_layout_and_columns_and_analyses(app_server, page, tmp_path):
    from tests import layout_fixtures

    export = tmp_path / "Area_0_2026_12_01.txt"
    export.write_bytes(layout_fixtures.msdial_alignment())
    page.goto(app_server.url + "/")
    upload(page, str(export))
    card = page.locator(".file-card", has_text=export.name)
    card.wait_for(timeout=60_000)
    text = card.inner_text()
    assert "recognised as MS-DIAL alignment export" in text
    assert "Volume ← mean of 3 samples (Brain_1, Brain_2, Brain_3)" in text
    assert "1 row skipped, not annotated" in text and "not a ganglioside (PC)" in text
    assert "323 rows" in text
    page.click("#analyze-button")
    page.wait_for_url(JOB_URL, timeout=90_000)
    wait_for_grid(page, "rows-grid")
    assert grid_rows(page, "rows-grid") == 323
