"""The job lifecycle: allowed transitions only, compare-and-set claims, events, cleanup."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading

import pytest
from sqlalchemy import func, select, update

from store.db import Database
from store.jobs import (
    TransitionError,
    cancel_job,
    claim_job,
    cleanup_old_jobs,
    delete_job,
    events_after,
    fail_job,
    fail_stale_jobs,
    get_job,
    list_jobs,
    record_progress,
    retry_job,
)
from store.models import Job, JobEvent, ResultRow, Upload, utcnow
from store.results import load_result, save_result
from tests.store.helpers import finished_job, new_job

TINY = b"Name,RT,Volume,Log P,Anchor\nGD1(36:1;O2),9.1,1000,1.5,T\n"


def count(db: Database, model, **where) -> int:
    with db.session() as session:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return session.execute(query).scalar_one()


def test_a_job_runs_through_its_states_with_ordered_events(database, porcine_csv):
    job, result = finished_job(database, porcine_csv.read_bytes(), "porcine.csv")
    stored = get_job(database, job.id)
    assert stored.status == "succeeded" and stored.progress_percent == 100 and stored.attempts == 1
    events = events_after(database, job.id, 0)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.status for e in events] == ["queued", "running", "succeeded"]
    assert stored.event_seq == events[-1].seq
    assert count(database, ResultRow, job_id=job.id) == len(result.rows) == 323


def test_progress_is_stored_only_while_running(database):
    job = new_job(database, TINY)
    assert record_progress(database, job.id, 10, "validating", "checking") is None
    claim_job(database, job.id, worker="w", stale_after_seconds=60)
    event = record_progress(database, job.id, 25, "fragments", "looking")
    assert (event.status, event.percent, event.step, event.seq) == ("running", 25, "fragments", 3)
    stored = get_job(database, job.id)
    assert (stored.progress_percent, stored.progress_step, stored.progress_message) == (25, "fragments", "looking")


@pytest.mark.parametrize(
    "status, action",
    [
        ("succeeded", lambda db, j: cancel_job(db, j)),
        ("succeeded", lambda db, j: retry_job(db, j)),
        ("queued", lambda db, j: retry_job(db, j)),
        ("queued", lambda db, j: delete_job(db, j)),
        ("running", lambda db, j: delete_job(db, j)),
    ],
)
def test_disallowed_transitions_are_refused_and_change_nothing(database, status, action):
    job = new_job(database, TINY)
    if status in ("running", "succeeded"):
        claim_job(database, job.id, worker="w", stale_after_seconds=60)
    if status == "succeeded":
        with database.transaction() as session:
            session.execute(update(Job).where(Job.id == job.id).values(status="succeeded"))
    before = get_job(database, job.id)
    with pytest.raises(TransitionError):
        action(database, job.id)
    after = get_job(database, job.id)
    assert (after.status, after.event_seq) == (before.status, before.event_seq)


def test_unknown_job_is_a_transition_error_not_a_crash(database):
    with pytest.raises(TransitionError, match="does not exist"):
        cancel_job(database, "00000000-0000-0000-0000-000000000000")
    assert get_job(database, "not-a-uuid") is None


def test_cancel_a_queued_job_and_a_running_one(database, porcine_csv):
    queued = new_job(database, TINY)
    assert cancel_job(database, queued.id).status == "cancelled"
    assert claim_job(database, queued.id, worker="w", stale_after_seconds=60) is None

    running = new_job(database, porcine_csv.read_bytes())
    claim_job(database, running.id, worker="w", stale_after_seconds=60)
    cancel_job(database, running.id)
    # The worker finishes anyway: its results must not land on a cancelled job.
    from analysis.pipeline import run_file

    with pytest.raises(TransitionError):
        save_result(database, running.id, run_file(porcine_csv))
    assert count(database, ResultRow, job_id=running.id) == 0
    assert get_job(database, running.id).status == "cancelled"


def test_retry_requeues_and_removes_old_results(database, porcine_csv):
    job, _ = finished_job(database, porcine_csv.read_bytes())
    with database.transaction() as session:  # pretend it failed after writing
        session.execute(update(Job).where(Job.id == job.id).values(status="failed"))
    event = retry_job(database, job.id)
    assert event.status == "queued"
    assert count(database, ResultRow, job_id=job.id) == 0
    assert load_result(database, job.id) is None
    assert claim_job(database, job.id, worker="w2", stale_after_seconds=60) is not None
    assert get_job(database, job.id).attempts == 2


def _claim_in_thread(url, job_id, barrier, winners):
    db = Database(url)
    barrier.wait()
    if claim_job(db, job_id, worker=threading.current_thread().name, stale_after_seconds=60):
        winners.append(threading.current_thread().name)
    db.dispose()


def test_twenty_threads_racing_to_claim_one_job_exactly_one_wins(database):
    job = new_job(database, TINY)
    barrier, winners = threading.Barrier(20), []
    threads = [
        threading.Thread(target=_claim_in_thread, args=(database.url, job.id, barrier, winners), name=f"worker-{i}")
        for i in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert get_job(database, job.id).worker == winners[0]
    assert count(database, JobEvent, job_id=job.id, status="running") == 1


def _claim_in_process(url, job_id, barrier, queue):
    db = Database(url)
    barrier.wait()
    queue.put(
        bool(claim_job(db, job_id, worker=f"process-{multiprocessing.current_process().pid}", stale_after_seconds=60))
    )


def test_twenty_processes_racing_to_claim_one_job_exactly_one_wins(database):
    job = new_job(database, TINY)
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(20), context.Queue()
    processes = [
        context.Process(target=_claim_in_process, args=(database.url, job.id, barrier, queue)) for _ in range(20)
    ]
    for process in processes:
        process.start()
    outcomes = [queue.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert sum(outcomes) == 1


def test_eight_concurrent_writers_lose_nothing(database, porcine_csv):
    from analysis.export import to_csv_bytes
    from analysis.pipeline import run_file
    from analysis.synthetic import generate_extract

    contents = [generate_extract(300 + 20 * i, seed=i).to_csv_bytes() for i in range(8)]
    jobs = [new_job(database, content) for content in contents]
    results = [run_file(content, filename="x.csv") for content in contents]
    for job in jobs:
        claim_job(database, job.id, worker="w", stale_after_seconds=60)
    errors = []

    def write(i):
        try:
            save_result(Database(database.url), jobs[i].id, results[i])
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for job, result in zip(jobs, results, strict=True):
        assert get_job(database, job.id).status == "succeeded"
        assert to_csv_bytes(load_result(database, job.id)) == to_csv_bytes(result)


def test_a_stale_running_job_can_be_reclaimed_or_failed(database):
    first, second = new_job(database, TINY), new_job(database, TINY)
    for job in (first, second):
        claim_job(database, job.id, worker="dead", stale_after_seconds=60)
    assert claim_job(database, first.id, worker="other", stale_after_seconds=60) is None  # still fresh
    old = utcnow() - dt.timedelta(minutes=10)
    with database.transaction() as session:
        session.execute(update(Job).values(heartbeat_at=old))
    assert claim_job(database, first.id, worker="other", stale_after_seconds=60) is not None
    assert get_job(database, first.id).attempts == 2
    failed = fail_stale_jobs(database, stale_after_seconds=60)
    assert [e.job_id for e in failed] == [str(second.id)]
    stored = get_job(database, second.id)
    assert stored.status == "failed" and "worker lost" in stored.error
    assert get_job(database, first.id).status == "running"


def test_fail_records_the_reason(database):
    job = new_job(database, TINY)
    claim_job(database, job.id, worker="w", stale_after_seconds=60)
    event = fail_job(database, job.id, "the engine raised ValueError: boom")
    assert event.status == "failed" and "boom" in event.message
    assert get_job(database, job.id).error == "the engine raised ValueError: boom"


def test_cleanup_deletes_exactly_the_old_finished_jobs_with_their_rows(database, porcine_csv):
    content = porcine_csv.read_bytes()
    old_done, _ = finished_job(database, content)
    old_failed = new_job(database, TINY)
    fail_job(database, old_failed.id, "bad")
    old_running = new_job(database, TINY)
    claim_job(database, old_running.id, worker="w", stale_after_seconds=60)
    recent_done, _ = finished_job(database, content)
    now = utcnow()
    with database.transaction() as session:
        for job in (old_done, old_failed, old_running):
            session.execute(update(Job).where(Job.id == job.id).values(created_at=now - dt.timedelta(days=31)))
        session.execute(update(Job).where(Job.id == recent_done.id).values(created_at=now - dt.timedelta(days=29)))
    assert cleanup_old_jobs(database, older_than_days=30, now=now) == 2
    remaining = {job.id for job, _ in list_jobs(database, limit=100)}
    assert remaining == {old_running.id, recent_done.id}
    assert count(database, ResultRow, job_id=old_done.id) == 0
    assert count(database, JobEvent, job_id=old_failed.id) == 0
    assert count(database, ResultRow, job_id=recent_done.id) == 323
    assert count(database, Upload) == 2


def test_delete_keeps_an_upload_another_job_uses(database):
    job = new_job(database, TINY)
    fail_job(database, job.id, "x")
    with database.transaction() as session:
        upload_id = session.get(Job, job.id).upload_id
        twin = Job(upload_id=upload_id, parameters={}, status="failed")
        session.add(twin)
    assert delete_job(database, job.id)
    assert count(database, Upload) == 1
    assert delete_job(database, twin.id)
    assert count(database, Upload) == 0


def test_staged_uploads_become_jobs_and_unused_ones_are_cleaned_up(database):
    from store.jobs import create_job_for_upload, stage_upload

    used = stage_upload(database, filename="a.csv", content=TINY, sha256="0" * 64)
    unused = stage_upload(database, filename="b.csv", content=TINY, sha256="0" * 64)
    event = create_job_for_upload(database, used, parameters={})
    assert (event.seq, event.status) == (1, "queued")
    assert get_job(database, event.job_id).status == "queued"
    with database.transaction() as session:
        session.execute(update(Upload).values(created_at=utcnow() - dt.timedelta(days=2)))
    cleanup_old_jobs(database, older_than_days=30)
    with database.session() as session:
        remaining = set(session.execute(select(Upload.key)).scalars())
    assert remaining == {used}
    with pytest.raises(LookupError, match="upload it again"):
        create_job_for_upload(database, unused, parameters={})


def test_a_staged_upload_is_reached_only_by_its_key_and_only_by_its_owner(database):
    from store.accounts import add_user
    from store.jobs import create_job_for_upload, stage_upload

    alice = add_user(database, "alice", "correct horse battery")
    bob = add_user(database, "bob", "correct horse battery")
    key = stage_upload(database, filename="a.csv", content=TINY, sha256="0" * 64, owner_id=alice.id)
    assert len(key) >= 32 and not key.isdigit()  # 24 random bytes, not a counter
    for forged, owner in [(key, bob.id), (key, None), ("1", alice.id), (key[:-1], alice.id)]:
        with pytest.raises(LookupError):
            create_job_for_upload(database, forged, parameters={}, owner_id=owner)
    event = create_job_for_upload(database, key, parameters={}, owner_id=alice.id)
    assert get_job(database, event.job_id).owner_id == alice.id


def test_times_come_back_in_utc_and_a_time_without_a_zone_is_refused(database):
    job_id = new_job(database, TINY).id
    two_hours_east = dt.timezone(dt.timedelta(hours=2))
    with database.transaction() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(created_at=dt.datetime(2026, 3, 1, 14, tzinfo=two_hours_east))
        )
    job = get_job(database, job_id)
    assert job.created_at == dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    assert job.created_at.utcoffset() == dt.timedelta(0)
    assert all(event.ts.endswith("+00:00") for event in events_after(database, job_id, 0))
    with pytest.raises(Exception, match="without a time zone"), database.transaction() as session:
        session.execute(update(Job).where(Job.id == job_id).values(created_at=dt.datetime(2026, 3, 1, 12)))
    assert get_job(database, job_id).created_at == dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
