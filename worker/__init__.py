"""Running jobs: the Celery app, the job runner, progress publishing, periodic tasks."""
