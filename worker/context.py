"""What a worker process needs, built once per process from the settings: database and publisher."""

from __future__ import annotations

import dataclasses

from settings import Settings, get_settings
from store.db import Database
from worker.progress import Publisher, make_publisher


@dataclasses.dataclass
class WorkerContext:
    settings: Settings
    db: Database
    publisher: Publisher


_context: WorkerContext | None = None


def configure(settings: Settings) -> WorkerContext:
    """Build (or rebuild) the process's context from these settings."""
    global _context
    if _context is not None:
        _context.publisher.close()
    _context = WorkerContext(settings, Database(settings.database_url), make_publisher(settings.redis_url))
    return _context


def worker_context() -> WorkerContext:
    return _context if _context is not None else configure(get_settings())


def reset_after_fork() -> None:
    """A forked child opens its own connections (the database pool notices the new pid itself)."""
    global _context
    if _context is not None:
        _context = WorkerContext(_context.settings, _context.db, make_publisher(_context.settings.redis_url))
