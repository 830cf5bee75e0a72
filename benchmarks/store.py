"""Persisting and reading results: 100,000 rows on SQLite and PostgreSQL.

    python benchmarks/store.py [--rows 100000] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Writes one analysed synthetic extract as a finished job (rows, models, rule tables and the
status change in one transaction), then reads the job's outlier rows back, as the results
page and the API do. PostgreSQL gets a fresh database that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy

from analysis.pipeline import run_file
from analysis.synthetic import generate_extract
from store.db import Database
from store.jobs import claim_job, create_job, get_job
from store.migrate import upgrade
from store.results import load_result, read_rows, save_result


def measure(url: str, result, content: bytes) -> None:
    db = Database(url)
    upgrade(db)
    job = get_job(db, create_job(db, filename="synthetic.csv", content=content, sha256="0" * 64, parameters={}).job_id)
    claim_job(db, job.id, worker="benchmark", stale_after_seconds=60)
    started = time.perf_counter()
    save_result(db, job.id, result)
    write = time.perf_counter() - started
    reads = []
    for _ in range(20):
        started = time.perf_counter()
        outliers = read_rows(db, job.id, statuses=["outlier"])
        reads.append(time.perf_counter() - started)
    started = time.perf_counter()
    load_result(db, job.id)
    full = time.perf_counter() - started
    backend = db.engine.dialect.name
    print(
        f"{backend:10s} write {len(result.rows):,} rows: {write:5.2f} s   read {len(outliers):,} outlier rows: "
        f"median {statistics.median(reads) * 1e3:5.1f} ms (max {max(reads) * 1e3:.1f})   "
        f"whole result: {full:5.2f} s"
    )
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    content = generate_extract(args.rows, seed=0).to_csv_bytes()
    result = run_file(content, filename="synthetic.csv")
    print(f"{len(result.rows):,} rows, {result.summary['counts']['outlier']:,} of them outliers")
    with tempfile.TemporaryDirectory() as directory:
        measure(f"sqlite:///{directory}/bench.db", result, content)
    admin = sqlalchemy.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    name = f"rtcheck_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        measure(sqlalchemy.engine.make_url(args.postgres).set(database=name).render_as_string(False), result, content)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
