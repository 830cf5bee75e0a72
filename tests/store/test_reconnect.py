"""A PostgreSQL restart while the pool holds connections: the next request still succeeds."""

from __future__ import annotations

from store.db import Database
from store.jobs import get_job, list_jobs
from store.migrate import upgrade
from tests.store.helpers import new_job


def test_requests_succeed_after_the_server_restarts(private_postgres):
    db = Database(private_postgres.url)
    upgrade(db)
    job = new_job(db, b"Name,RT,Volume,Log P,Anchor\n")
    # Fill the pool with several open connections, then restart the server under them.
    sessions = [db.session() for _ in range(3)]
    for session in sessions:
        session.connection()
    for session in sessions:
        session.close()
    assert db.engine.pool.checkedin() >= 3
    private_postgres.restart()
    assert get_job(db, job.id).status == "queued"
    assert len(list_jobs(db)) == 1
    db.dispose()
