"""Embedded mode: each analysis in its own local process, at most `LOCAL_WORKERS` at a time.

The stored jobs are the queue. A scheduler thread in the web process starts the oldest queued
jobs whenever a slot is free, so a job queued by any process (a request thread, a background
callback's process, an earlier run of the app) is picked up, and nothing is lost if a wake-up
is. It gives embedded jobs the guarantees Celery gives full-stack ones:

- an analysis process that dies (killed, out of memory) fails its job as "worker lost" at once
  and frees its slot; the next job gets a fresh process;
- soft time limit: the process is asked to stop (SIGUSR1 raises `TimeLimitReached` in it, and
  the runner fails the job with that reason); hard limit: it is killed and the job failed here;
- cancel: a running job's process is stopped as soon as its stored status is "cancelled".

Processes come from a fork server: it is started fresh (not forked from the threaded web
server, whose locks a fork could copy mid-use) and forks each analysis from its own
single-threaded state with the engine already imported.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import signal
import threading
import time
import uuid

from sqlalchemy import select

from settings import Settings
from store.jobs import fail_job, get_job
from store.models import Job, JobStatus
from worker import context as worker_context_module
from worker.context import WorkerContext
from worker.limits import apply_memory_limit
from worker.maintenance import cleanup, fail_stale
from worker.notify import notify_job_finished
from worker.runner import TIME_LIMIT_REASON, TimeLimitReached, run_job

log = logging.getLogger(__name__)

SCHEDULE_SECONDS = 0.5  # how often the scheduler looks for queued jobs without a wake-up
PARENT_CHECK_SECONDS = 1.0
PRELOAD = ["worker.local"]  # what the fork server imports once for every analysis process


def _on_soft_limit(_signum, _frame) -> None:
    raise TimeLimitReached()


def _run_in_child(settings_values: dict, job_id: str, web_pid: int) -> None:
    signal.signal(signal.SIGUSR1, _on_soft_limit)
    threading.Thread(target=_exit_with_web_process, args=(web_pid,), name="web-watch", daemon=True).start()
    context = worker_context_module.configure(Settings(**settings_values))
    settings = context.settings
    apply_memory_limit(settings.job_memory_mb)
    run_job(
        context.db,
        job_id,
        publisher=context.publisher,
        worker=child_name(os.getpid()),
        stale_after_seconds=settings.stale_job_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
    )


def _exit_with_web_process(web_pid: int) -> None:
    """End this analysis process once the web process whose scheduler started it is gone (the
    fork server, its parent, outlives the web process while it has children).

    A job cut off this way stays "running" until the stale-job check fails it as "worker lost".
    """
    while True:
        try:
            os.kill(web_pid, 0)
        except ProcessLookupError:
            os._exit(0)
        time.sleep(PARENT_CHECK_SECONDS)


def child_name(pid: int) -> str:
    return f"local:{pid}"


@dataclasses.dataclass
class _Running:
    job_id: str
    process: multiprocessing.process.BaseProcess
    started: float
    soft_limit_sent: bool = False


class LocalRunner:
    def __init__(self, settings: Settings, context: WorkerContext) -> None:
        self.settings, self.context = settings, context
        self._values = settings.model_dump(mode="json")
        self._mp = multiprocessing.get_context("forkserver")
        self._mp.set_forkserver_preload(PRELOAD)
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._scheduler = threading.Thread(target=self._schedule, name="local-scheduler", daemon=True)
        self._timer = threading.Thread(target=self._upkeep, name="local-upkeep", daemon=True)
        self._last_cleanup: float | None = None  # None: clean up at the first tick after start

    def start(self) -> LocalRunner:
        """Start the scheduler (it also picks up jobs left queued when the app last stopped)."""
        self._scheduler.start()
        self._timer.start()
        return self

    def submit(self, job_id: str) -> None:
        """A job was queued: look now rather than at the next tick."""
        self._wake.set()

    def cancel(self, job_id: str) -> None:
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._scheduler.is_alive()

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._running)

    def queued(self) -> int:
        with self.context.db.session() as session:
            return len(session.execute(select(Job.id).where(Job.status == JobStatus.QUEUED)).all())

    def shutdown(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            running = list(self._running.values())
        for item in running:
            item.process.kill()

    # The scheduler: reap, enforce limits and cancellations, fill free slots.
    def _schedule(self) -> None:
        while not self._stop.is_set():
            try:
                self._reap()
                self._enforce()
                self._start_queued()
            except Exception:
                log.exception("the local scheduler failed a round; trying again")
            self._wake.wait(SCHEDULE_SECONDS)
            self._wake.clear()

    def _start_queued(self) -> None:
        free = self.settings.local_workers - self.busy
        if free <= 0:
            return
        with self._lock:
            taken = set(self._running)
        query = (
            select(Job.id)
            .where(Job.status == JobStatus.QUEUED)
            .order_by(Job.created_at, Job.id)
            .limit(free + len(taken))
        )
        with self.context.db.session() as session:
            waiting = [str(job_id) for job_id in session.execute(query).scalars()]
        for job_id in [j for j in waiting if j not in taken][:free]:
            process = self._mp.Process(
                target=_run_in_child, args=(self._values, job_id, os.getpid()), name=f"analysis-{job_id}"
            )
            process.start()
            with self._lock:
                self._running[job_id] = _Running(job_id, process, time.monotonic())

    def _reap(self) -> None:
        with self._lock:
            ended = [item for item in self._running.values() if not item.process.is_alive()]
            for item in ended:
                del self._running[item.job_id]
        for item in ended:
            item.process.join()
            job = get_job(self.context.db, item.job_id)
            if job is None:
                continue
            code = item.process.exitcode
            if job.status == JobStatus.RUNNING and job.worker == child_name(item.process.pid):
                how = f"signal {-code}" if code and code < 0 else f"exit code {code}"
                self._fail(item.job_id, f"worker lost: the analysis process ended ({how})")
            elif job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
                threading.Thread(target=self._notify, args=(item.job_id,), daemon=True).start()

    def _enforce(self) -> None:
        with self._lock:
            running = list(self._running.values())
        if not running:
            return
        with self.context.db.session() as session:
            statuses = dict(
                session.execute(
                    select(Job.id, Job.status).where(Job.id.in_([uuid.UUID(item.job_id) for item in running]))
                ).all()
            )
        statuses = {str(job_id): status for job_id, status in statuses.items()}
        for item in running:
            elapsed = time.monotonic() - item.started
            if statuses.get(item.job_id, JobStatus.CANCELLED) == JobStatus.CANCELLED:
                item.process.terminate()  # the job is already cancelled (or gone): stop its work
            elif elapsed > self.settings.job_time_limit:
                item.process.kill()
                item.process.join()
                self._fail(item.job_id, TIME_LIMIT_REASON)
            elif elapsed > self.settings.job_soft_time_limit and not item.soft_limit_sent:
                item.soft_limit_sent = True
                os.kill(item.process.pid, signal.SIGUSR1)

    def _fail(self, job_id: str, reason: str) -> None:
        try:
            self.context.publisher.publish(fail_job(self.context.db, job_id, reason))
            log.warning("job failed: %s", reason, extra={"job_id": job_id})
        except Exception as exc:  # finished or cancelled meanwhile
            log.info("job %s not failed (%s): %s", job_id, reason, exc)

    def _notify(self, job_id: str) -> None:
        try:
            notify_job_finished(self.context, job_id)
        except Exception as exc:
            log.warning("could not send the notification: %s", exc, extra={"job_id": job_id})

    def _upkeep(self) -> None:
        while not self._stop.wait(60):
            try:
                fail_stale(self.context)
                if self._last_cleanup is None or time.monotonic() - self._last_cleanup > 24 * 3600:
                    cleanup(self.context, self.settings.retention_days)
                    self._last_cleanup = time.monotonic()
            except Exception:
                log.exception("periodic upkeep failed")
