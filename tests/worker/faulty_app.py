"""The real app for test workers, with one injected fault: a file named explode.csv makes the
analysis raise, as an unexpected bug in a worker would. Everything else runs unchanged."""

import worker.runner as runner
from app import celery_app  # noqa: F401 - the attribute `celery -A` loads

_real_run_file = runner.run_file


def _run_file(source, *, filename=None, **kwargs):
    if filename == "explode.csv":
        raise RuntimeError("injected fault: the analysis crashed")
    return _real_run_file(source, filename=filename, **kwargs)


runner.run_file = _run_file
