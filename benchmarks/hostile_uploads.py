"""Hostile and large uploads against the running server, with a health probe alongside.

    python benchmarks/hostile_uploads.py

Starts `python app.py` (embedded, MAX_UPLOAD_MB 40), then posts, one after another, a valid
20 MB table (about 780,000 rows; its job is cancelled at once) and the corpus of
tests/hostile_files.py. For each it prints
the HTTP status, how long the answer took, the latencies of `/api/health` asked every 50 ms
meanwhile (p50 / p99 / max) and the web process's resident memory after it. The checks run in
child processes (dashboard/upload_check.py): the figures show what that buys the web process.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from tests import hostile_files as hostile  # noqa: E402
from tests.e2e.conftest import start_embedded  # noqa: E402
from tests.e2e.test_hostile_uploads import resident_mb  # noqa: E402


def probe(url: str, stop: threading.Event, latencies: list[float]) -> None:
    while not stop.wait(0.05):
        started = time.perf_counter()
        try:
            requests.get(f"{url}/api/health", timeout=30)
        finally:
            latencies.append((time.perf_counter() - started) * 1000)


def main() -> None:
    files = [
        ("valid 20 MB table", "valid.csv", hostile.rows_csv(780_000)),
        ("oversize (41 MB)", "big.csv", hostile.rows_csv(1_600_000)),
        ("1,000,001 rows", "million.csv", hostile.rows_csv(1_000_001)),
        ("10,000 columns", "wide.csv", hostile.wide_csv(10_000, n_rows=200)),
        ("a 1 MB cell", "cell.csv", hostile.long_cell_csv(1024 * 1024)),
        ("zip bomb (200 MB inflated)", "bomb.xlsx", hostile.zip_bomb_xlsx(200)),
        ("entity expansion", "lol.xlsx", hostile.entity_expansion_xlsx()),
    ]
    with tempfile.TemporaryDirectory() as directory:
        server = start_embedded(Path(directory), max_upload_mb=40, auth_required=False)
        try:
            pid = server.processes[0].pid
            print(f"web process at start: {resident_mb(pid):.0f} MB resident")
            print(f"{'file':28s} {'bytes':>11s} {'status':>6s} {'answer s':>9s}  health p50/p99/max ms   web MB")
            for label, name, data in files:
                stop, latencies = threading.Event(), []
                thread = threading.Thread(target=probe, args=(server.url, stop, latencies), daemon=True)
                thread.start()
                started = time.perf_counter()
                response = requests.post(f"{server.url}/api/jobs", files={"file": (name, data)}, timeout=600)
                took = time.perf_counter() - started
                if response.status_code == 202:  # do not let its analysis load the machine meanwhile
                    requests.post(f"{server.url}/api/jobs/{response.json()['id']}/cancel", timeout=30)
                stop.set()
                thread.join()
                ordered = sorted(latencies)
                p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
                print(
                    f"{label:28s} {len(data):>11,d} {response.status_code:>6d} {took:>9.2f}  "
                    f"{statistics.median(ordered):6.1f} / {p99:6.1f} / {ordered[-1]:6.1f}   {resident_mb(pid):6.0f}"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
