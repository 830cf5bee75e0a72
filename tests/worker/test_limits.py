"""The memory ceiling of one analysis (worker/limits.py), in fresh interpreters.

Each case runs in its own `python -c` so the limit and the BLAS set-up are those of a new
worker process, not of the test process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import REPO


def run_fresh(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_worker_process_gives_blas_one_thread_so_an_analysis_starts_none():
    out = run_fresh(
        """
        import worker
        import numpy
        from threadpoolctl import threadpool_info
        print(sorted({pool["num_threads"] for pool in threadpool_info()}))
        """
    )
    assert out == "[1]"


def test_an_allocation_over_the_budget_raises_memory_error_and_the_limit_is_lifted_after():
    out = run_fresh(
        """
        import resource
        import worker
        import numpy as np
        from worker.limits import memory_limit, memory_limit_mb
        before = resource.getrlimit(resource.RLIMIT_DATA)
        with memory_limit(64):
            inside = memory_limit_mb()
            small = np.ones(2_000_000)          # 16 MB: within the budget
            try:
                np.ones(20_000_000)             # 160 MB: over it
                raised = False
            except MemoryError:
                raised = True
        large = np.ones(20_000_000)             # the same allocation once the analysis is over
        print(inside, raised, memory_limit_mb(), resource.getrlimit(resource.RLIMIT_DATA) == before)
        """
    )
    assert out == "64 True None True"
