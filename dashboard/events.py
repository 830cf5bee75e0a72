"""One event feed per web process, fanned out to every open WebSocket.

Full stack: a single Redis subscription to `jobs:all` (not one per socket, so a process can
hold hundreds of sockets with one Redis connection). Embedded: a tail of the stored events
table. Either way the stored events stay the truth: when the feed may have lost messages
(Redis restarted, a gap in sequence numbers) listeners are told to catch up from the store.
"""

from __future__ import annotations

import json
import logging
import queue
import threading

import redis
from sqlalchemy import func, select

from store.db import Database
from store.jobs import DELETED, Event
from store.models import JobEvent
from worker.progress import Publisher

log = logging.getLogger(__name__)

RESYNC = {"type": "resync"}  # told to listeners when messages may have been missed


class Listener:
    """A socket's inbox: events of one job, or of every job when job_id is None."""

    def __init__(self, job_id: str | None) -> None:
        self.job_id = job_id
        self.inbox: queue.Queue = queue.Queue(maxsize=10_000)

    def offer(self, item: dict) -> None:
        try:
            self.inbox.put_nowait(item)
        except queue.Full:  # a stuck client: drop, and make it catch up from the store later
            self._drain()
            self.inbox.put_nowait(RESYNC)

    def _drain(self) -> None:
        while True:
            try:
                self.inbox.get_nowait()
            except queue.Empty:
                return


class EventHub:
    def __init__(self, db: Database, redis_url: str = "", poll_interval: float = 0.2) -> None:
        self.db, self.redis_url, self.poll_interval = db, redis_url, poll_interval
        self._listeners: set[Listener] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-hub", daemon=True)
        self.connected = threading.Event()

    def start(self) -> EventHub:
        """Start the feed once (idempotent); the first socket that needs it calls this."""
        with self._lock:
            if not self._thread.is_alive() and not self._stop.is_set() and self._thread.ident is None:
                self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def subscribe(self, job_id: str | None = None) -> Listener:
        listener = Listener(job_id)
        with self._lock:
            self._listeners.add(listener)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.discard(listener)

    @property
    def listener_count(self) -> int:
        with self._lock:
            return len(self._listeners)

    def dispatch(self, event: dict) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            if event is RESYNC or listener.job_id is None or listener.job_id == event.get("job_id"):
                listener.offer(event)

    def _run(self) -> None:
        if self.redis_url:
            self._follow_redis()
        else:
            self._tail_store()

    def _follow_redis(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            client = redis.Redis.from_url(
                self.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe("jobs:all")
                if not self.connected.is_set():
                    self.connected.set()
                    self.dispatch(RESYNC)  # anything published while we were away is in the store
                delay = 0.5
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        self.dispatch(json.loads(message["data"]))
            except (redis.RedisError, OSError) as exc:
                if self.connected.is_set():
                    log.warning("lost the Redis event feed (%s); reconnecting", exc)
                self.connected.clear()
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
            finally:
                try:
                    pubsub.close()
                    client.close()
                except (redis.RedisError, OSError):
                    pass

    def _tail_store(self) -> None:
        with self.db.session() as session:
            cursor = session.execute(select(func.coalesce(func.max(JobEvent.id), 0))).scalar_one()
        self.connected.set()
        while not self._stop.is_set():
            try:
                with self.db.session() as session:
                    rows = (
                        session.execute(select(JobEvent).where(JobEvent.id > cursor).order_by(JobEvent.id).limit(1000))
                        .scalars()
                        .all()
                    )
                for row in rows:
                    cursor = row.id
                    self.dispatch(
                        {
                            "job_id": str(row.job_id),
                            "seq": row.seq,
                            "status": row.status,
                            "percent": row.percent,
                            "step": row.step,
                            "message": row.message,
                            "ts": row.ts.isoformat(),
                        }
                    )
            except Exception as exc:
                log.warning("could not read new job events: %s", exc)
                rows = []
            if not rows:
                self._stop.wait(self.poll_interval)


class LocalAnnouncer(Publisher):
    """Embedded mode: stored events reach the hub through its tail of the store; an event no
    row keeps (a deletion) is handed to it directly. One process, so nothing else needs telling."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub

    def publish(self, event: Event | None) -> None:
        if event is not None and event.status == DELETED:
            self.hub.dispatch(event.to_dict())
