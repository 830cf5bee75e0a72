"""Embedded mode: analyses in a local process pool, periodic upkeep on a timer thread."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor

from settings import Settings
from store.jobs import list_jobs
from worker import context as worker_context_module
from worker.maintenance import cleanup, fail_stale
from worker.notify import notify_job_finished
from worker.runner import run_job

log = logging.getLogger(__name__)


def _child_init(settings_values: dict) -> None:
    worker_context_module.configure(Settings(**settings_values))
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """End this pool process once the web process that started it is gone.

    A pool process blocks reading its task pipe, and its siblings hold that pipe's other end,
    so a web process killed outright (SIGKILL, out of memory) would leave them waiting forever.
    A job cut off this way stays "running" until the stale-job check fails it as "worker lost".
    """
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


PARENT_CHECK_SECONDS = 1.0


def _run_in_child(job_id: str) -> str:
    context = worker_context_module.worker_context()
    settings = context.settings
    name = f"local:{multiprocessing.current_process().pid}"
    return run_job(
        context.db,
        job_id,
        publisher=context.publisher,
        worker=name,
        stale_after_seconds=settings.stale_job_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
    )


class LocalRunner:
    """Runs jobs in `LOCAL_WORKERS` spawned processes of this machine.

    Processes are spawned, not forked: the web server is threaded, and a forked copy of a
    threaded process can inherit a lock some other thread held.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.context = worker_context_module.configure(settings)
        values = settings.model_dump(mode="json")
        self.pool = ProcessPoolExecutor(
            max_workers=settings.local_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_init,
            initargs=(values,),
        )
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._upkeep, name="local-upkeep", daemon=True)
        self._last_cleanup: float | None = None  # None: clean up at the first tick after start
        self.futures: dict[str, Future] = {}

    def start(self) -> LocalRunner:
        """Start the timer and pick up jobs left queued when the app last stopped."""
        self._timer.start()
        waiting = list_jobs(self.context.db, statuses=["queued"], limit=10_000)
        for job, _ in sorted(waiting, key=lambda item: item[0].created_at):
            self.submit(str(job.id))
        if waiting:
            log.info("resumed %d queued jobs", len(waiting))
        return self

    def submit(self, job_id: str) -> None:
        future = self.pool.submit(_run_in_child, job_id)
        self.futures[job_id] = future
        future.add_done_callback(lambda done, job_id=job_id: self._finished(job_id, done))

    def _finished(self, job_id: str, future: Future) -> None:
        self.futures.pop(job_id, None)
        try:
            outcome = future.result()
        except Exception:  # the child died: the stale-job check will fail the job
            log.exception("local worker process failed", extra={"job_id": job_id})
            return
        if outcome in ("succeeded", "failed"):
            threading.Thread(target=self._notify, args=(job_id,), daemon=True).start()

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

    @property
    def busy(self) -> int:
        return len(self.futures)

    def shutdown(self) -> None:
        self._stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
