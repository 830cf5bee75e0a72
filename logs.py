"""Logging set-up: JSON lines in production (or LOG_FORMAT=json), readable lines in development.

Log calls that concern a job pass `extra={"job_id": ...}`; both formats show it.
"""

from __future__ import annotations

import logging
import sys
import time

from pythonjsonlogger.json import JsonFormatter

from settings import Settings


def json_formatter() -> JsonFormatter:
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, message, any `extra` fields
    (job_id, ...), and exception when there is one."""
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
        timestamp="ts",
        json_default=_jsonable,
    )


def _jsonable(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class TextFormatter(logging.Formatter):
    converter = time.gmtime  # UTC, for this formatter only

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        job = getattr(record, "job_id", None)
        return f"{line} [job {job}]" if job else line


def configure_logging(settings: Settings) -> None:
    use_json = settings.log_format == "json" or (settings.log_format == "auto" and settings.app_env == "production")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        json_formatter() if use_json else TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.set_name("rtcheck")
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "rtcheck"] + [handler]
    root.setLevel(settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # requests are logged by dashboard.observability
