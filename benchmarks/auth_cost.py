"""What sign-in costs: per API request with a token or a session, and the sign-in itself.

    python benchmarks/auth_cost.py [--requests 2000]

In process, through Flask's test client (no network, no browser), on one app in embedded mode
(SQLite) with sign-in required, and on the same app in single-user mode (no check at all):
the median and p99 time of `GET /api/health` and `GET /api/jobs?limit=1`, anonymous-allowed
versus with `Authorization: Bearer <token>` versus with a session cookie; then the time of one
`POST /login` (argon2id verification; the form fetched before) followed by the upload page, which is what a user waits
for between pressing "Sign in" and seeing the page's HTML; then, in headless Chromium against
`python app.py`, from pressing "Sign in" to the upload page's drop zone on screen (median of
--browser-runs).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from store import accounts  # noqa: E402
from tests.dashboard.clients import build_client  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_embedded  # noqa: E402

PASSWORD = "correct horse battery"


def timed(client, path: str, n: int, **headers) -> tuple[float, float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--browser-runs", type=int, default=5)
    arguments = parser.parse_args()
    n = arguments.requests
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        open_client = build_client(Path(one), auth_required=False)
        signed = build_client(Path(two), auth_required=True)
        accounts.add_user(signed.db, "alice", PASSWORD)
        token = accounts.create_token(signed.db, "alice", "benchmark")[1]
        session = signed.application.test_client()
        form = session.get("/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        started = time.perf_counter()
        answer = session.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf})
        assert answer.status_code == 302, answer.status_code
        page = session.get("/")
        sign_in_ms = (time.perf_counter() - started) * 1000
        assert page.status_code == 200
        print(f"{'request':34s} {'median ms':>10s} {'p99 ms':>8s}")
        rows = []
        for path in ("/api/health", "/api/jobs?limit=1"):
            rows.append((f"{path} single-user (no check)", *timed(open_client, path, n)))
            rows.append((f"{path} bearer token", *timed(signed, path, n, Authorization=f"Bearer {token}")))
            rows.append((f"{path} session cookie", *timed(session, path, n)))
        for label, median, p99 in rows:
            print(f"{label:34s} {median:10.2f} {p99:8.2f}")
        base = {path: rows[i * 3][1] for i, path in enumerate(("/api/health", "/api/jobs?limit=1"))}
        for i, path in enumerate(("/api/health", "/api/jobs?limit=1")):
            print(
                f"auth cost on {path}: token {rows[i * 3 + 1][1] - base[path]:+.2f} ms, "
                f"session {rows[i * 3 + 2][1] - base[path]:+.2f} ms (medians)"
            )
        print(f"sign-in (POST /login, argon2id) then the upload page's HTML: {sign_in_ms:.0f} ms")
    print(f"in Chromium, 'Sign in' pressed to the upload page visible: {browser_sign_in_ms(arguments.browser_runs)}")


def browser_sign_in_ms(runs: int) -> str:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as directory:
        server = start_embedded(Path(directory), auth_required=True)
        try:
            server.store("users", "add", "alice", password=PASSWORD)
            times = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for _ in range(runs):
                    context = browser.new_context()
                    page = context.new_page()
                    page.goto(server.url + "/login")
                    page.fill("#username", "alice")
                    page.fill("#password", PASSWORD)
                    started = time.perf_counter()
                    page.click("#sign-in")
                    page.wait_for_selector("#upload", state="visible")
                    times.append((time.perf_counter() - started) * 1000)
                    context.close()
                browser.close()
        finally:
            server.stop()
    return f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms over {runs} runs"


if __name__ == "__main__":
    main()
