"""Background callbacks in embedded mode: Dash's diskcache manager, run in threads, not forks.

`dash.DiskcacheManager` starts every background callback in a process forked from the web
server. That server is threaded, and a fork copies whatever locks its other threads hold at that
instant: SQLite's own mutexes among them (every request reads the signed-in account from the
database). A child forked while one was held waits for ever on its first database call, and the
click never comes back. The Analyze callback only stores and queues jobs (milliseconds; the
analyses run in the local scheduler's processes), so a thread is the right place for it: no
fork, no copied locks, and the same diskcache hand-over of results and progress to the page.

A thread cannot be killed, so "terminate" (a newer click of the same button, the page closed)
forgets the job instead: it finishes its few milliseconds and its result expires unread.
"""

from __future__ import annotations

import itertools
import threading

import dash


class ThreadedDiskcacheManager(dash.DiskcacheManager):
    def __init__(self, cache, expire: int | None = None):
        super().__init__(cache, expire=expire)
        self._numbers = itertools.count(1)  # 0 reads as "no job" to Dash
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    def call_job_fn(self, key, job_fn, args, context) -> int:
        with self._lock:
            self._forget_finished()
            number = next(self._numbers)
            thread = threading.Thread(
                target=job_fn,
                args=(key, self._make_progress_key(key), args, context),
                name=f"dash-background-{number}",
                daemon=True,
            )
            self._threads[number] = thread
        thread.start()
        return number

    def job_running(self, job) -> bool:
        with self._lock:
            thread = self._threads.get(int(job)) if job else None
        return thread is not None and thread.is_alive()

    def terminate_job(self, job) -> None:
        if job:
            with self._lock:
                self._threads.pop(int(job), None)

    def terminate_unhealthy_job(self, job) -> bool:
        return False  # a thread is never a zombie

    def _forget_finished(self) -> None:
        for number in [n for n, thread in self._threads.items() if not thread.is_alive()]:
            del self._threads[number]
