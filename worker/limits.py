"""The memory ceiling of one analysis (JOB_MEMORY_MB).

Before each analysis the process's data-segment limit (RLIMIT_DATA: heap and private anonymous
mappings, where numpy and pandas allocate) is set to what the process already holds plus the
budget, so the budget is what the analysis itself may add, whatever the process imported
before. An allocation beyond it raises MemoryError in the analysis, which fails the job once,
with the reason; the kernel's out-of-memory killer, which would take the process (and in the
full stack get the task delivered again), is not reached.
"""

from __future__ import annotations

import contextlib
import re
import resource
from collections.abc import Iterator
from pathlib import Path

MEGABYTE = 1024 * 1024
_budget_mb: int | None = None


def data_size() -> int:
    """Bytes in this process's data segment now (VmData)."""
    match = re.search(r"^VmData:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) * 1024 if match else 0


def apply_memory_limit(megabytes: int) -> None:
    """Allow the coming analysis `megabytes` more than the process holds; 0 lifts the limit."""
    global _budget_mb
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if megabytes <= 0:
        resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))
        _budget_mb = None
        return
    wanted = data_size() + megabytes * MEGABYTE
    resource.setrlimit(resource.RLIMIT_DATA, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))
    _budget_mb = megabytes


@contextlib.contextmanager
def memory_limit(megabytes: int) -> Iterator[None]:
    """`apply_memory_limit` for the duration of one analysis; the process's limit is restored after
    (a Celery worker process goes on to run other tasks)."""
    global _budget_mb
    before = resource.getrlimit(resource.RLIMIT_DATA)
    apply_memory_limit(megabytes)
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, before)
        _budget_mb = None


def memory_limit_mb() -> int | None:
    """The budget of the analysis running in this process, if one was set."""
    return _budget_mb
