"""Copying SQLite → PostgreSQL, and dump/load backups: verified, all or nothing."""

from __future__ import annotations

import gzip
import subprocess
import sys

import pytest

from analysis.export import to_csv_bytes
from analysis.synthetic import generate_extract
from store import accounts
from store.db import Database
from store.jobs import fail_job, list_jobs
from store.migrate import upgrade
from store.results import load_result
from store.transfer import TransferError, copy_database, database_report, dump_database, is_empty, load_database
from tests.conftest import REPO
from tests.store.helpers import finished_job, new_job


@pytest.fixture
def filled_sqlite(tmp_path, porcine_csv):
    db = Database(f"sqlite:///{tmp_path / 'source.db'}")
    upgrade(db)
    jobs = [finished_job(db, porcine_csv.read_bytes(), "porcine.csv")[0]]
    jobs += [finished_job(db, generate_extract(400, seed=s).to_csv_bytes(), f"synthetic-{s}.csv")[0] for s in (1, 2)]
    failed = new_job(db, b"Name,RT\n")
    fail_job(db, failed.id, "missing columns")
    accounts.add_user(db, "ana", "a long password", role="admin")
    _, token = accounts.create_token(db, "ana", "script")
    db.token = token  # for the tests that check the copy
    yield db, jobs
    db.dispose()


def test_copy_sqlite_to_postgresql_is_verified_and_reads_back_identical(filled_sqlite, postgres_url):
    source, jobs = filled_sqlite
    destination = Database(postgres_url)
    report = copy_database(source, destination, batch=500)
    assert report.tables == database_report(source).tables
    assert report.tables["result_rows"].rows == 323 + 400 + 400
    for job in jobs:
        assert to_csv_bytes(load_result(destination, job.id)) == to_csv_bytes(load_result(source, job.id))
    # New uploads on the destination continue above the copied ids.
    extra = new_job(destination, b"x")
    assert extra.upload_id > max(job.upload_id for job in jobs)
    # Accounts come along: the password hash and the token digest still work there.
    assert accounts.authenticate(destination, "ana", "a long password").is_admin
    assert accounts.account_for_token(destination, source.token).username == "ana"
    assert accounts.add_user(destination, "bo", "another password").id > 1
    destination.dispose()


def test_copy_refuses_a_destination_with_data_unless_forced(filled_sqlite, postgres_url):
    source, _ = filled_sqlite
    destination = Database(postgres_url)
    copy_database(source, destination)
    with pytest.raises(TransferError, match="already holds data"):
        copy_database(source, destination)
    assert copy_database(source, destination, force=True).tables == database_report(source).tables
    destination.dispose()


def test_a_failure_mid_copy_leaves_the_destination_unchanged(filled_sqlite, postgres_url):
    source, _ = filled_sqlite
    destination = Database(postgres_url)

    def fail_in_result_rows(table, copied):
        if table == "result_rows" and copied >= 500:
            raise RuntimeError("network dropped")

    with pytest.raises(RuntimeError, match="network dropped"):
        copy_database(source, destination, batch=250, on_batch=fail_in_result_rows)
    assert is_empty(destination)
    destination.dispose()


def test_dump_then_load_round_trips_exactly(filled_sqlite, database, tmp_path):
    source, _jobs = filled_sqlite
    backup = tmp_path / "backup.jsonl.gz"
    written = dump_database(source, backup)
    loaded = load_database(database, backup)
    assert loaded.tables == written.tables == database_report(source).tables
    assert {j.id for j, _ in list_jobs(database, limit=10)} == {j.id for j, _ in list_jobs(source, limit=10)}
    again = tmp_path / "again.jsonl.gz"
    dump_database(database, again)
    body = lambda path: gzip.decompress(path.read_bytes()).split(b"\n", 1)[1]  # noqa: E731 - skip the header
    assert body(again) == body(backup)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "not gzip", "other json", "empty"])
def test_a_damaged_backup_fails_cleanly_and_loads_nothing(filled_sqlite, database, tmp_path, damage):
    source, _ = filled_sqlite
    backup = tmp_path / "backup.jsonl.gz"
    dump_database(source, backup)
    data = backup.read_bytes()
    raw = gzip.decompress(data)
    if damage == "truncated":
        damaged = gzip.compress(raw[: len(raw) * 2 // 3])
    elif damage == "flipped":
        damaged = gzip.compress(raw.replace(b"GD1(36:1;O2)", b"GD1(36:1;O3)", 1))
    elif damage == "not gzip":
        damaged = b"this is not a backup"
    elif damage == "other json":
        damaged = gzip.compress(b'{"hello": "world"}\n')
    else:
        damaged = b""
    backup.write_bytes(damaged)
    with pytest.raises(TransferError):
        load_database(database, backup)
    assert is_empty(database)


def run_store(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "store", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_store_cli_copy_dump_load_and_cleanup(filled_sqlite, postgres_url, tmp_path):
    source, _ = filled_sqlite
    done = run_store("copy", source.url, postgres_url)
    assert done.returncode == 0, done.stderr
    assert "verified" in done.stdout and "result_rows" in done.stdout
    refused = run_store("copy", source.url, postgres_url)
    assert refused.returncode == 1 and "already holds data" in refused.stderr and "Traceback" not in refused.stderr
    backup = tmp_path / "b.gz"
    assert run_store("dump", str(backup), "--url", postgres_url).returncode == 0
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    restored = run_store("load", str(backup), "--url", target)
    assert restored.returncode == 0, restored.stderr
    backup.write_bytes(backup.read_bytes()[:200])
    broken = run_store("load", str(backup), "--url", f"sqlite:///{tmp_path / 'other.db'}")
    assert broken.returncode == 1 and "truncated or corrupted" in broken.stderr
    cleaned = run_store("cleanup", "--older-than", "30", "--url", target)
    assert cleaned.returncode == 0 and "deleted 0 finished jobs" in cleaned.stdout
