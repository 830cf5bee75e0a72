"""Idle WebSockets against HTTP on one web process (gunicorn gthread, as the README deploys it).

    python benchmarks/sockets.py [--sockets 100] [--threads 32] [--requests 200]

One client opens --sockets idle `/ws/jobs` sockets at once (each answers pings, as an open
browser tab does), then HTTP requests (`/api/health`, the
jobs page) are timed one after another. Twice: with the caps as shipped (WS_MAX_CONNECTIONS 24,
WS_MAX_PER_CLIENT 8) and with the caps lifted above the thread count, as before they existed.
Prints sockets served (their first frame arrived within 3 s), refused (429), and left without
a handshake or first frame; then HTTP p50/p99/max and how many requests got no answer within
5 s. The app runs embedded (SQLite): the sockets and threads are the web process's alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402
import websocket  # noqa: E402

from tests.services import wait_until  # noqa: E402
from tests.stack import GunicornServer  # noqa: E402


def run(label: str, sockets: int, threads: int, requests_n: int, max_connections: int, per_client: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        values = {
            "data_dir": directory,
            "secret_key": "b" * 40,
            "app_env": "test",
            "redis_url": "",
            "auth_required": False,  # single-user mode: the sockets measured, not sign-in
            "ws_max_connections": max_connections,
            "ws_max_per_client": per_client,
            "log_level": "WARNING",
        }
        server = GunicornServer(values, Path(directory) / "web.log", threads=threads).start()
        url, port = server.url, server.port
        try:
            outcomes: list[str] = []
            stop = threading.Event()
            threads = [
                threading.Thread(target=_idle_client, args=(port, outcomes, stop), daemon=True) for _ in range(sockets)
            ]
            for thread in threads:
                thread.start()
            wait_until(lambda: len(outcomes) == sockets, 30)
            served, refused = outcomes.count("served"), outcomes.count("refused")
            failed = sockets - served - refused
            times, unanswered = [], 0
            for i in range(requests_n):
                path = "/api/health" if i % 2 == 0 else "/jobs"
                started = time.perf_counter()
                try:
                    requests.get(url + path, timeout=5).raise_for_status()
                    times.append((time.perf_counter() - started) * 1000)
                except requests.RequestException:
                    unanswered += 1
                    if unanswered >= 5:  # the server is starved; more would only wait
                        break
            stop.set()
        finally:
            server.stop()
    if times:
        cuts = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else times * 99
        latency = f"p50 {statistics.median(times):6.1f} ms  p99 {cuts[98]:6.1f} ms  max {max(times):6.1f} ms"
    else:
        latency = "no request answered"
    print(
        f"{label:34s} served {served:3d}  refused {refused:3d}  not served {failed:3d}  "
        f"HTTP {latency}  unanswered {unanswered}"
    )


def _idle_client(port: int, outcomes: list[str], stop: threading.Event) -> None:
    """One browser tab left open: connects, reads the first frame, then only answers pings."""
    try:
        sock = websocket.create_connection(f"ws://127.0.0.1:{port}/ws/jobs", timeout=3)
        sock.recv()  # served: the stream's first frame (the job listing) arrived
    except websocket.WebSocketBadStatusException:
        outcomes.append("refused")
        return
    except (OSError, websocket.WebSocketException):
        outcomes.append("not served")
        return
    outcomes.append("served")
    sock.settimeout(1)
    while not stop.is_set():
        try:
            sock.recv()  # answers the server's pings, as a browser does
        except websocket.WebSocketTimeoutException:
            continue
        except (OSError, websocket.WebSocketException):
            return
    sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=100)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    print(f"{args.sockets} idle sockets from one client, gunicorn gthread 1 x {args.threads} threads")
    run("caps as shipped (24 / 8 per client)", args.sockets, args.threads, args.requests, 24, 8)
    lifted = args.sockets * 10
    run(f"caps lifted ({lifted} / {lifted})", args.sockets, args.threads, args.requests, lifted, lifted)


if __name__ == "__main__":
    main()
