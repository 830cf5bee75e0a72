"""Screenshots of every page on the real sample, for the README and docs/screenshots/.

.venv/bin/python scripts/screenshots.py [--data ../shared/data/porcine_brain_gangliosides.csv]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_embedded  # noqa: E402

OUT = REPO / "docs" / "screenshots"
READY = (
    "() => { try { return dash_ag_grid.getApi('rows-grid').getDisplayedRowCount() > 0; } catch (e) { return false; } }"
)
LIVE = "() => { const e = document.querySelector('#jobs-transport'); return !!e && e.innerText.includes('live'); }"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "porcine_brain_gangliosides.csv")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory, sync_playwright() as playwright:
        server = start_embedded(Path(directory))
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
        try:
            page.goto(server.url + "/")
            page.set_input_files("#upload input[type=file]", str(args.data))
            page.locator(".file-card").wait_for()
            page.click("#params-toggle")
            page.wait_for_timeout(500)
            page.screenshot(path=OUT / "upload.png", full_page=True)
            page.click("#analyze-button")
            page.wait_for_url("**/jobs/**", timeout=120_000)
            page.wait_for_function(READY, timeout=120_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=OUT / "results.png", full_page=False)
            job_url = page.url.split("?")[0]
            page.goto(job_url + "?head=GD1")
            page.wait_for_function(READY)
            page.wait_for_timeout(1000)
            page.screenshot(path=OUT / "results-gd1.png", full_page=True)
            page.goto(job_url + "?tab=model")
            page.wait_for_selector("text=Coefficients")
            page.wait_for_timeout(1000)
            page.screenshot(path=OUT / "model.png", full_page=True)
            page.goto(server.url + "/jobs")
            page.wait_for_function(LIVE)
            page.wait_for_timeout(1000)
            page.screenshot(path=OUT / "jobs.png")
            page.goto(server.url + "/methods")
            page.wait_for_timeout(1000)
            page.screenshot(path=OUT / "methods.png")
        finally:
            browser.close()
            server.stop()
    print("\n".join(str(p.relative_to(REPO)) for p in sorted(OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
