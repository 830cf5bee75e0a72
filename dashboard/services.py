"""What the web layer works with, created once per app: settings, database, dispatcher, event hub."""

from __future__ import annotations

import dataclasses

from flask import current_app

from settings import Settings
from store.db import Database

EXTENSION_KEY = "rtcheck"


@dataclasses.dataclass
class Services:
    settings: Settings
    db: Database
    dispatcher: object  # worker.dispatch.CeleryDispatcher or LocalDispatcher
    hub: object  # dashboard.events.EventHub
    publisher: object  # worker.progress.Publisher: announces changes the web process makes
    celery: object | None = None


def services() -> Services:
    return current_app.extensions[EXTENSION_KEY]
