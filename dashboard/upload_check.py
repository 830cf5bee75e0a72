"""Checking an upload away from the web process, bounded in time and memory.

Reading and validating a file is CPU work on what a stranger sent. Done on a request thread it
holds the interpreter while it runs, so a large or adversarial file (a wide CSV, a workbook built
to expand) stalls every other request of that web process, health checks included, and whatever
it allocates stays in the web process afterwards. Here each check runs in a process of its own,
forked from the fork server the embedded scheduler uses (started fresh, with the engine already
imported), under three bounds:

- time: `UPLOAD_CHECK_SECONDS`; a check still running then is killed and the upload refused
  with `check_timeout`, naming the limit;
- memory: `JOB_MEMORY_MB` more than the process starts with (as for an analysis); a check that
  needs more is refused with `too_large`;
- concurrency: at most `UPLOAD_CHECK_WORKERS` checks at once per web process; one more waits for
  a slot for as long as a check may take, then gets `busy` (503).

The file's own bounds (bytes, rows, columns, cell length, archive expansion) are enforced by
`analysis.reader` inside the check. What comes back is a small summary, not the parsed table:
the job's analysis reads the stored file again.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import signal
import threading
import time
import traceback

import pandas as pd

from analysis.errors import RowIssue
from analysis.params import Parameters
from dashboard.errors import SubmissionError
from dashboard.submission import MAX_ISSUES_RETURNED, check_upload
from worker.limits import apply_memory_limit

PREVIEW_ROWS = 8
PREVIEW_COLUMNS = ["row", "name", "rt", "volume", "log_p", "anchor", "canonical_name"]


@dataclasses.dataclass
class CheckedUpload:
    """What the upload page and the API need from a check that passed."""

    n_rows: int
    invalid_rows: int  # rows with at least one problem
    issues: list[RowIssue]  # the first MAX_ISSUES_RETURNED problems
    n_issues: int
    extra_columns: list[str]
    file_format: str
    notices: list[str]
    preview: pd.DataFrame  # the first rows, PREVIEW_COLUMNS


def summarise(
    filename: str, data: bytes, params: Parameters, max_bytes: int, mapping: dict | None = None
) -> CheckedUpload:
    table = check_upload(filename, data, params, max_bytes, mapping)
    return CheckedUpload(
        n_rows=table.n_rows,
        invalid_rows=len({issue.row for issue in table.issues}),
        issues=table.issues[:MAX_ISSUES_RETURNED],
        n_issues=len(table.issues),
        extra_columns=list(table.extra_columns),
        file_format=table.file_format,
        notices=list(table.notices),
        preview=table.frame.head(PREVIEW_ROWS)[PREVIEW_COLUMNS].copy(),
    )


def _check_in_child(
    connection, filename: str, data: bytes, params: dict, max_bytes: int, memory_mb: int, mapping: dict | None
) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    apply_memory_limit(memory_mb)
    try:
        outcome = ("ok", summarise(filename, data, Parameters.from_mapping(params), max_bytes, mapping))
    except SubmissionError as exc:
        outcome = ("refused", (exc.code, exc.message, exc.details))
    except MemoryError:
        outcome = ("memory", None)
    except Exception:  # a fault of ours, not the file's: the web process logs it and answers 500
        outcome = ("fault", traceback.format_exc())
    connection.send(outcome)
    connection.close()


class UploadChecker:
    """Runs `summarise` in a child process per upload, within the bounds above."""

    def __init__(self, *, seconds: float, workers: int, memory_mb: int) -> None:
        from worker.local import PRELOAD  # the same fork server as the embedded analyses

        self.seconds, self.memory_mb = seconds, memory_mb
        self._slots = threading.BoundedSemaphore(workers)
        self._mp = multiprocessing.get_context("forkserver")
        self._mp.set_forkserver_preload(PRELOAD)

    def check(
        self, filename: str, data: bytes, params: Parameters, max_bytes: int, mapping: dict | None = None
    ) -> CheckedUpload:
        name = filename or "upload"
        if not self._slots.acquire(timeout=self.seconds):
            raise SubmissionError("busy", f"every upload check stayed busy for {self.seconds:g} s; try again shortly")
        try:
            return self._run(name, data, params, max_bytes, mapping)
        finally:
            self._slots.release()

    def _run(self, name: str, data: bytes, params: Parameters, max_bytes: int, mapping: dict | None) -> CheckedUpload:
        receiver, sender = self._mp.Pipe(duplex=False)
        process = self._mp.Process(
            target=_check_in_child,
            args=(sender, name, data, params.to_dict(), max_bytes, self.memory_mb, mapping),
            name="upload-check",
            daemon=True,
        )
        started = time.monotonic()
        process.start()
        sender.close()
        try:
            if not receiver.poll(max(self.seconds - (time.monotonic() - started), 0)) and process.is_alive():
                raise SubmissionError(
                    "check_timeout",
                    f"{name}: checking the file took longer than {self.seconds:g} s (UPLOAD_CHECK_SECONDS) "
                    "and was stopped; split the file, or export fewer columns",
                )
            try:
                kind, value = receiver.recv()
            except EOFError:  # the process ended without an answer: killed, most likely for memory
                process.join(5)
                raise SubmissionError(
                    "too_large",
                    f"{name}: the check of the file stopped abnormally (exit {process.exitcode}); it probably "
                    f"needs more than the {self.memory_mb} MB a check may use (JOB_MEMORY_MB)",
                ) from None
        finally:
            receiver.close()
            if process.is_alive():
                process.kill()
            process.join(5)
        if kind == "ok":
            return value
        if kind == "fault":
            raise RuntimeError(f"checking {name} failed in the check process:\n{value}")
        if kind == "memory":
            raise SubmissionError(
                "too_large", f"{name}: checking the file needs more than {self.memory_mb} MB (JOB_MEMORY_MB)"
            )
        code, message, details = value
        raise SubmissionError(code, message, details)
