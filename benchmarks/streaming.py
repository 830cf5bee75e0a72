"""Live progress and queue figures on the full stack (PostgreSQL, Redis, Celery, gunicorn).

    python benchmarks/streaming.py [--clients 1,100,500] [--events 60] [--jobs 30]

1. Latency from publishing a progress event to a WebSocket client receiving it, for 1, 100 and
   500 clients on one web process (gunicorn gthread: one thread per open socket).
2. How many sockets one web process holds at once (ramped until the configured threads).
3. Queue overhead: submit → succeeded for the sample, minus the engine's own time.
4. Throughput: sample analyses per minute with 2 worker processes.

Needs PostgreSQL (--postgres) and Redis (--redis); uses a fresh database and Redis db 13.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402
import requests  # noqa: E402
import sqlalchemy  # noqa: E402
import websocket  # noqa: E402

from store.db import Database  # noqa: E402
from store.jobs import claim_job, create_job, get_job, record_progress  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from tests.services import free_port, wait_until  # noqa: E402
from tests.stack import celery_worker_command, gunicorn_command, spawn  # noqa: E402
from worker.progress import RedisPublisher  # noqa: E402

SAMPLE = REPO.parent / "shared" / "data" / "porcine_brain_gangliosides.csv"


def workers_online(base: str) -> bool:
    try:
        return requests.get(f"{base}/api/health", timeout=2).json()["workers"]["ok"]
    except (requests.RequestException, ValueError):
        return False


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_run(db, publisher, ws_url: str, clients: int, events: int) -> dict:
    job = get_job(db, create_job(db, filename="latency.csv", content=b"x", sha256="0" * 64, parameters={}).job_id)
    claim_job(db, job.id, worker="benchmark", stale_after_seconds=600)
    received: list[list[float]] = [[] for _ in range(clients)]
    ready = threading.Barrier(clients + 1)
    failures = []

    def client(index: int) -> None:
        try:
            connection = websocket.create_connection(f"{ws_url}/ws/jobs/{job.id}", timeout=60)
            connection.recv()  # snapshot
        except Exception as exc:
            failures.append(repr(exc))
            ready.wait()
            return
        ready.wait()
        while len(received[index]) < events:
            message = json.loads(connection.recv())
            if message["type"] == "progress":
                sent_at = float(message["message"])
                received[index].append(time.time() - sent_at)
        connection.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    time.sleep(0.5)
    for i in range(events):
        publisher.publish(record_progress(db, job.id, min(i, 89), "model", f"{time.time():.6f}"))
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=60)
    latencies = [value * 1000 for values in received for value in values]
    return {
        "clients": clients,
        "connected": clients - len(failures),
        "messages": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
    }


def capacity_run(ws_url: str, target: int, hold_job: str) -> int:
    sockets = []
    try:
        for _ in range(target):
            connection = websocket.create_connection(f"{ws_url}/ws/jobs/{hold_job}", timeout=10)
            connection.recv()
            sockets.append(connection)
    except Exception:
        pass
    held = len(sockets)
    for connection in sockets:
        connection.close()
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--clients", default="1,100,500")
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=30)
    args = parser.parse_args()

    admin = sqlalchemy.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    name = f"rtcheck_stream_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sqlalchemy.engine.make_url(args.postgres).set(database=name).render_as_string(False)
    redis.Redis.from_url(args.redis).flushdb()
    db = Database(url)
    upgrade(db)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": args.redis,
        "SECRET_KEY": "b" * 40,
        "APP_ENV": "test",
        "AUTH_REQUIRED": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }
    processes = [
        spawn(gunicorn_command(port, threads=args.threads), env),
        spawn(celery_worker_command(loglevel="WARNING", name="benchmark"), env),
    ]
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: workers_online(base), 90, interval=0.2), "the stack did not come up"
        publisher = RedisPublisher(args.redis)
        print(
            f"1. progress latency, publish → WebSocket client, one gunicorn gthread process "
            f"({args.events} events at 20/s)"
        )
        for clients in [int(c) for c in args.clients.split(",")]:
            figures = latency_run(db, publisher, ws_url, clients, args.events)
            print(
                f"   {figures['clients']:4d} clients ({figures['connected']} connected, {figures['messages']:,} "
                f"messages): p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
                f"max {figures['max_ms']:.1f} ms"
            )

        hold = get_job(db, create_job(db, filename="hold.csv", content=b"x", sha256="0" * 64, parameters={}).job_id)
        claim_job(db, hold.id, worker="benchmark", stale_after_seconds=600)
        held = capacity_run(ws_url, args.threads - 20, str(hold.id))
        print(f"2. sockets held at once by one web process with {args.threads} threads: {held:,}")

        sample = SAMPLE.read_bytes()
        overheads, engine = [], []
        for _ in range(10):
            started = time.perf_counter()
            job_id = requests.post(f"{base}/api/jobs", files={"file": ("sample.csv", sample)}, timeout=30).json()["id"]
            connection = websocket.create_connection(f"{ws_url}/ws/jobs/{job_id}", timeout=60)
            while True:  # the stream's terminal message marks the end, without polling delay
                message = json.loads(connection.recv())
                status = message.get("status") or message.get("job", {}).get("status")
                if status in ("succeeded", "failed"):
                    break
            total = time.perf_counter() - started
            connection.close()
            duration = requests.get(f"{base}/api/jobs/{job_id}/results", timeout=30).json()["provenance"][
                "duration_seconds"
            ]
            overheads.append(total - duration)
            engine.append(duration)
        total_ms = (statistics.median(overheads) + statistics.median(engine)) * 1e3
        print(
            f"3. submit → succeeded for the sample: median {total_ms:.0f} ms, of which "
            f"the engine {statistics.median(engine) * 1e3:.0f} ms; queue overhead median "
            f"{statistics.median(overheads) * 1e3:.0f} ms (max {max(overheads) * 1e3:.0f} ms; includes upload "
            "validation, storing the upload, dispatch, pick-up, progress writes and saving the results)"
        )

        started = time.perf_counter()
        ids = [
            requests.post(f"{base}/api/jobs", files={"file": ("sample.csv", sample)}, timeout=30).json()["id"]
            for _ in range(args.jobs)
        ]
        assert wait_until(
            lambda: all(requests.get(f"{base}/api/jobs/{i}", timeout=5).json()["status"] == "succeeded" for i in ids),
            600,
        )
        elapsed = time.perf_counter() - started
        print(
            f"4. throughput with 2 worker processes: {args.jobs} sample analyses in {elapsed:.1f} s = "
            f"{args.jobs / elapsed * 60:.0f} per minute"
        )
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
        db.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
