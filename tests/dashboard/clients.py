"""A Flask test client of the app in embedded mode on a SQLite file, its scheduler not started."""

from __future__ import annotations

from settings import Settings


def finish(client, job_id: str) -> None:
    """Run a queued job's analysis here, as the scheduler would, so its results exist."""
    from worker.progress import Publisher
    from worker.runner import run_job

    outcome = run_job(
        client.db, job_id, publisher=Publisher(), worker="test", stale_after_seconds=60, heartbeat_seconds=5
    )
    assert outcome == "succeeded", outcome


def build_client(tmp_path, **overrides):
    from dashboard.factory import create_app, make_celery_app

    values = {
        "database_url": f"sqlite:///{tmp_path / 'api.db'}",
        "redis_url": "",
        "data_dir": tmp_path,
        "app_env": "test",
        "max_upload_mb": 1,
        "auth_required": False,  # single-user mode; tests/dashboard/test_auth.py signs in
    }
    settings = Settings(**{**values, **overrides})
    if settings.redis_url:  # full mode: the schema is not migrated on start
        from store.db import Database
        from store.migrate import upgrade

        upgrade(Database(settings.database_url))
    app = create_app(settings, celery=make_celery_app(settings), start_background=False)
    client = app.server.test_client()
    client.db, client.settings = app.server.extensions["rtcheck"].db, settings
    return client
