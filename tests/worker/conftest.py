"""The full stack for worker tests: PostgreSQL, a private Redis, real Celery workers, a live server."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import uuid

import pytest
import redis

from settings import Settings
from store.db import Database
from store.migrate import upgrade
from tests import services
from tests.stack import CeleryWorker, LiveServer, stack_env


@dataclasses.dataclass
class Stack:
    settings: Settings
    values: dict
    app: object
    celery: object
    db: Database
    live: LiveServer
    workers: list
    tmp: object

    def start_worker(self, concurrency: int = 2, name: str = "extra", **options) -> CeleryWorker:
        """A worker (`options`: `queues`, `pool`), by default on both queues with a prefork pool."""
        worker = CeleryWorker(
            stack_env(self.values),
            self.tmp / f"worker-{uuid.uuid4().hex[:6]}.log",
            concurrency=concurrency,
            app="tests.worker.faulty_app:celery_app",
            name=name,
            **options,
        ).start()
        self.workers.append(worker)
        return worker


def build_stack(values: dict, tmp, *, with_worker: bool = True, concurrency: int = 2):
    from dashboard.factory import create_app, make_celery_app

    settings = Settings(**values)
    db = Database(settings.database_url)
    upgrade(db)
    celery = make_celery_app(settings)
    app = create_app(settings, celery=celery, start_background=True)
    live = LiveServer(app.server).__enter__()
    stack = Stack(settings, values, app, celery, db, live, [], tmp)
    if with_worker:
        stack.start_worker(concurrency, name="main")
    return stack


def teardown_stack(stack: Stack) -> None:
    for worker in stack.workers:
        worker.stop()
    stack.live.__exit__(None, None, None)
    stack.db.dispose()


# Redis databases 1-15 in turn, one per stack: a module's stack stays up while the module's other
# tests build their own, and two stacks on one queue would take each other's tasks (a worker
# given a job of another database skips it, and that job then waits for ever).
_REDIS_DATABASES = itertools.cycle(range(1, 16))


def own_redis_database(redis_url: str) -> str:
    return f"{redis_url.rsplit('/', 1)[0]}/{next(_REDIS_DATABASES)}"


@contextlib.contextmanager
def fresh_stack(postgres_admin_url: str, redis_url: str, tmp, *, label: str, with_worker: bool = True, **overrides):
    """A new database, an emptied Redis, the live server and (unless told not to) a worker.

    `overrides` replace the test settings below; everything is stopped and the database
    dropped afterwards, also when start-up fails half-way.
    """
    name = f"rtcheck_{label}_{uuid.uuid4().hex[:10]}"
    redis_url = own_redis_database(redis_url)
    url = services.create_database(postgres_admin_url, name)
    try:
        redis.Redis.from_url(redis_url).flushdb()
        values = {
            "database_url": url,
            "redis_url": redis_url,
            "secret_key": "s" * 40,
            "app_env": "test",
            "data_dir": str(tmp),
            "stale_job_seconds": 10,
            "heartbeat_seconds": 1,
            "job_soft_time_limit": 300,
            "job_time_limit": 360,
            "auth_required": False,
            **overrides,
        }
        stack = build_stack(values, tmp, with_worker=with_worker)
        try:
            yield stack
        finally:
            teardown_stack(stack)
    finally:
        services.drop_database(postgres_admin_url, name)


@pytest.fixture(scope="module")
def full_stack(postgres_admin_url, private_redis, tmp_path_factory):
    """One stack per test module: a fresh database, an empty Redis, two worker processes."""
    with fresh_stack(postgres_admin_url, private_redis.url, tmp_path_factory.mktemp("stack"), label="stack") as stack:
        yield stack
