"""Dashboard figures in headless Chromium, embedded and full stack.

    python benchmarks/dashboard.py [--repeat 5]

1. From clicking Analyze on the real sample to its results being visible (plot and table).
2. Opening the results page of a 10,000-row job until plot and table are visible.
3. The size of the upload page's initial load (every response, as sent and gzip-compressed).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402
import requests  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from analysis.synthetic import generate_extract  # noqa: E402
from tests import services  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_embedded, start_full  # noqa: E402

SAMPLE = REPO.parent / "shared" / "data" / "porcine_brain_gangliosides.csv"
RESULTS_VISIBLE = """() => { try { const gd = document.querySelector('#main-graph .js-plotly-plot');
                                   return gd && gd._fullData && gd._fullData.length > 0
                                       && dash_ag_grid.getApi('rows-grid').getDisplayedRowCount() > 0; }
                             catch (error) { return false; } }"""


def analyze_to_results(page, base: str) -> float:
    page.goto(base + "/")
    page.set_input_files("#upload input[type=file]", str(SAMPLE))
    page.locator(".file-card").wait_for()
    page.wait_for_function("() => !document.querySelector('#analyze-button').disabled")
    started = time.perf_counter()
    page.click("#analyze-button")
    page.wait_for_url("**/jobs/**", timeout=120_000)
    page.wait_for_function(RESULTS_VISIBLE, timeout=120_000, polling=20)
    return time.perf_counter() - started


def open_results(page, base: str, job_id: str) -> float:
    started = time.perf_counter()
    page.goto(f"{base}/jobs/{job_id}")
    page.wait_for_function(RESULTS_VISIBLE, timeout=120_000, polling=20)
    return time.perf_counter() - started


def initial_payload(browser, base: str) -> tuple[int, int, int]:
    context = browser.new_context()
    page = context.new_page()
    bodies: list[bytes] = []

    def collect(response):
        with contextlib.suppress(Exception):  # redirects and aborted requests have no body
            bodies.append(response.body())

    page.on("response", collect)
    page.goto(base + "/", wait_until="networkidle")
    context.close()
    raw = sum(len(b) for b in bodies)
    return len(bodies), raw, sum(len(gzip.compress(b)) for b in bodies)


def measure(browser, server, repeat: int) -> None:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    analyze = [analyze_to_results(page, server.url) for _ in range(repeat)]
    content = generate_extract(10_000, seed=3).to_csv_bytes()
    job_id = requests.post(f"{server.url}/api/jobs", files={"file": ("ten-thousand.csv", content)}, timeout=60).json()[
        "id"
    ]
    while requests.get(f"{server.url}/api/jobs/{job_id}", timeout=10).json()["status"] not in ("succeeded", "failed"):
        time.sleep(0.2)
    open_results(page, server.url, job_id)  # first view warms the server's result cache
    render = [open_results(page, server.url, job_id) for _ in range(repeat)]
    files, raw, compressed = initial_payload(browser, server.url)
    print(
        f"  click Analyze → sample results visible: median {statistics.median(analyze):.2f} s "
        f"(min {min(analyze):.2f}, max {max(analyze):.2f})"
    )
    print(
        f"  10,000-row results page until plot and table show: median {statistics.median(render):.2f} s "
        f"(min {min(render):.2f}, max {max(render):.2f})"
    )
    print(
        f"  upload page initial load: {files} responses, {raw / 1e6:.2f} MB as sent, "
        f"{compressed / 1e6:.2f} MB if gzip-compressed (as nginx serves it)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with tempfile.TemporaryDirectory() as directory:
            print("embedded (python app.py, SQLite, local process pool)")
            server = start_embedded(Path(directory))
            try:
                measure(browser, server, args.repeat)
            finally:
                server.stop()
        with tempfile.TemporaryDirectory() as directory:
            print("full stack (gunicorn gthread, Celery worker, PostgreSQL, Redis)")
            private_redis = services.start_private_redis()
            name = f"rtcheck_ui_{uuid.uuid4().hex[:8]}"
            url = services.create_database(args.postgres, name)
            redis.Redis.from_url(private_redis.url).flushall()
            server = start_full(Path(directory), url, private_redis.url)
            try:
                measure(browser, server, args.repeat)
            finally:
                server.stop()
                private_redis.remove()
                services.drop_database(args.postgres, name)
        browser.close()


if __name__ == "__main__":
    main()
