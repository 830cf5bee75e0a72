"""Tables that crowd many peaks of few names onto few retention times stay linear in memory.

A valid 1 MB table of 50,000 rows with 48 names on whole minutes once took 18 GB: the fragment
search compared every pair of co-eluting peaks. It now compares each peak with each larger
species of its ceramide. The small case below is checked by hand; the large ones are measured
in a separate process (its peak resident memory), with a generous bound.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from analysis.fragments import find_fragments
from analysis.pipeline import load_table
from tests.analysis.builders import csv_bytes
from tests.conftest import REPO

MEMORY_BOUND_MB = 1024


def test_a_crowded_retention_time_by_hand():
    # Three GM1, two GD1 and one GT1 of one ceramide at the same minute: every smaller peak goes
    # to the most abundant peak that contains it, GT1 (1e6), not to a GD1 (1e5, 2e5).
    rows = [("GM1(36:1;O2)", 10.0, 1e4 * (i + 1), 0, "F") for i in range(3)]
    rows += [("GD1(36:1;O2)", 10.0, v, 0, "F") for v in (1e5, 2e5)]
    rows += [("GT1(36:1;O2)", 10.0, 1e6, 0, "T")]
    frame = load_table(csv_bytes(rows), filename="t.csv").frame
    result = find_fragments(frame, frame["valid"].to_numpy(), 0.05, 1.0)
    assert result.is_fragment.tolist() == [True] * 5 + [False]
    assert result.fragment_of.tolist() == [6] * 5 + [0]
    assert result.merged_volume[5] == pytest.approx(1e6 + 2e5 + 1e5 + 6e4)
    assert len(result.pairs) == 5


def test_failed_candidates_of_one_composition_are_summarised_not_listed_one_by_one():
    # A GD1 larger than all four co-eluting GT1: flagged for review against the largest GT1 only.
    rows = [("GD1(36:1;O2)", 10.0, 1e7, 0, "F")] + [("GT1(36:1;O2)", 10.0, 1e5 * (i + 1), 0, "F") for i in range(4)]
    frame = load_table(csv_bytes(rows), filename="t.csv").frame
    result = find_fragments(frame, frame["valid"].to_numpy(), 0.05, 1.0)
    assert not result.is_fragment.any() and result.review.all()
    (pair,) = result.pairs.to_dict("records")
    assert pair["precursor_volume"] == 4e5 and "largest of 4 co-eluting peaks" in pair["lost"]


MEASURE = """
import json, resource, sys
from analysis.pipeline import run_file
from analysis.synthetic import crowded_table
result = run_file(crowded_table(int(sys.argv[1])), filename="crowded.csv")
print(json.dumps({"rows": len(result.rows), "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


@pytest.mark.parametrize("rows", [20_000, 50_000])
def test_a_crowded_table_analyses_in_bounded_memory(rows):
    process = subprocess.run(
        [sys.executable, "-c", MEASURE, str(rows)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert process.returncode == 0, process.stderr[-2000:]
    figures = json.loads(process.stdout.strip().splitlines()[-1])
    assert figures["rows"] == rows
    assert figures["peak_mb"] < MEMORY_BOUND_MB, figures  # 18 GB before; about 0.3 GB now
