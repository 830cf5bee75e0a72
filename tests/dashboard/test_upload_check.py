"""Upload checks run in child processes, bounded in time, memory and number."""

from __future__ import annotations

import pytest

from analysis.params import Parameters
from dashboard.errors import SubmissionError
from dashboard.upload_check import PREVIEW_ROWS, UploadChecker
from tests import hostile_files as hostile

MB = 1024 * 1024


def refused(checker: UploadChecker, name: str, data: bytes, params: Parameters | None = None) -> SubmissionError:
    with pytest.raises(SubmissionError) as caught:
        checker.check(name, data, params or Parameters(), 200 * MB)
    return caught.value


def test_a_check_that_passes_returns_the_summary_the_page_shows(porcine_csv):
    checked = UploadChecker(seconds=60, workers=1, memory_mb=0).check(
        "porcine.csv", porcine_csv.read_bytes(), Parameters(), 20 * MB
    )
    assert (checked.n_rows, checked.invalid_rows, checked.file_format) == (323, 0, "csv")
    assert len(checked.preview) == PREVIEW_ROWS and list(checked.preview["row"]) == list(range(1, PREVIEW_ROWS + 1))


def test_a_refusal_in_the_child_reaches_the_caller_with_its_code_and_details():
    data = hostile.rows_csv(3) + b"GD1(34:1;O2),not a time,1,1,T\n"
    error = refused(UploadChecker(seconds=60, workers=1, memory_mb=0), "bad.csv", data)
    assert error.code == "invalid_rows" and error.details[0]["row"] == 4


def test_a_check_over_its_time_is_stopped_and_the_refusal_names_the_limit():
    # 300,000 rows take seconds to check; the limit is a tenth of a second
    error = refused(UploadChecker(seconds=0.1, workers=1, memory_mb=0), "long.csv", hostile.rows_csv(300_000))
    assert error.code == "check_timeout" and "0.1 s (UPLOAD_CHECK_SECONDS)" in error.message


def test_a_check_over_its_memory_is_refused_naming_the_limit():
    # 300,000 rows need a few hundred MB as text records and a frame; 20 MB is far too little
    error = refused(UploadChecker(seconds=120, workers=1, memory_mb=20), "big.csv", hostile.rows_csv(300_000))
    assert error.code == "too_large" and "20 MB" in error.message and "JOB_MEMORY_MB" in error.message


def test_with_every_slot_busy_a_check_waits_then_gets_busy():
    checker = UploadChecker(seconds=0.2, workers=1, memory_mb=0)
    assert checker._slots.acquire(timeout=1)  # the one slot, held by another check
    try:
        error = refused(checker, "waiting.csv", hostile.rows_csv(3))
    finally:
        checker._slots.release()
    assert error.code == "busy" and error.status == 503
    assert checker.check("now.csv", hostile.rows_csv(3), Parameters(), MB).n_rows == 3


def test_a_fault_in_the_check_process_is_a_server_error_with_its_traceback_not_a_verdict_on_the_file():
    checker = UploadChecker(seconds=60, workers=1, memory_mb=0)
    with pytest.raises(RuntimeError, match=r"(?s)checking bug\.csv failed.*TypeError"):
        checker.check("bug.csv", hostile.rows_csv(3), Parameters(), None)  # no byte limit: a caller's bug
