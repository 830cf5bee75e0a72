"""Publishing job events: stored first (the truth), then announced on Redis for live streams."""

from __future__ import annotations

import json
import logging

import redis

from store.jobs import Event

log = logging.getLogger(__name__)

ALL_JOBS_CHANNEL = "jobs:all"


def job_channel(job_id: str) -> str:
    return f"jobs:{job_id}"


class Publisher:
    """Announces stored events. The base class announces nothing (embedded mode tails the store)."""

    def publish(self, event: Event | None) -> None:
        return None

    def close(self) -> None:
        return None


class RedisPublisher(Publisher):
    """Publishes each event on `jobs:<id>` and `jobs:all`.

    Redis pub/sub keeps nothing, and a lost announcement costs only latency: streams catch up
    from the stored events whenever they see a gap or reconnect. So a publish that fails is
    logged and dropped, never allowed to fail the job.
    """

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)

    def publish(self, event: Event | None) -> None:
        if event is None:
            return
        message = json.dumps(event.to_dict())
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.publish(job_channel(event.job_id), message)
            pipe.publish(ALL_JOBS_CHANNEL, message)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning(
                "could not announce event %s of job %s: %s",
                event.seq,
                event.job_id,
                exc,
                extra={"job_id": event.job_id},
            )

    def close(self) -> None:
        self.client.close()


def make_publisher(redis_url: str) -> Publisher:
    return RedisPublisher(redis_url) if redis_url else Publisher()
