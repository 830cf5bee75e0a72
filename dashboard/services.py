"""What the web layer works with, created once per app: settings, database, job control, event hub.

Request handlers find it on the Flask app. A background callback runs outside any request (in
a Celery worker, or in a process Dash forks for it); it finds the one its process installed.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from flask import current_app, has_app_context

from settings import Settings
from store.db import Database

if TYPE_CHECKING:
    from celery import Celery

    from dashboard.events import EventHub
    from dashboard.upload_check import UploadChecker
    from worker.control import JobControl
    from worker.dispatch import CeleryDispatcher, LocalDispatcher
    from worker.progress import Publisher

EXTENSION_KEY = "rtcheck"


@dataclasses.dataclass
class Services:
    settings: Settings
    db: Database
    dispatcher: CeleryDispatcher | LocalDispatcher
    hub: EventHub
    publisher: Publisher  # announces changes the web process makes
    jobs: JobControl  # submit, cancel, retry, delete: the only way the web layer changes a job
    checker: UploadChecker  # reads and validates uploads in bounded child processes
    celery: Celery | None = None


_installed: Services | None = None


def install(found: Services) -> None:
    """Make these the services of code that runs outside a request in this process."""
    global _installed
    _installed = found


def services() -> Services:
    if has_app_context():
        return current_app.extensions[EXTENSION_KEY]
    if _installed is None:
        raise RuntimeError("no app was created in this process")
    return _installed
