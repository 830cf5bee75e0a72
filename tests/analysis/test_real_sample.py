"""The engine on the real porcine brain sample (science.md §7)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis.pipeline import run_file
from analysis.result import STATUSES


@pytest.fixture(scope="module")
def result(porcine_csv):
    return run_file(porcine_csv)


def test_every_input_row_appears_once_with_a_status(result, porcine_csv):
    source = pd.read_csv(porcine_csv)
    assert len(result.rows) == len(source) == 323
    assert result.rows["row"].tolist() == list(range(1, 324))
    assert set(result.rows["status"]) <= set(STATUSES)
    assert result.rows["reason"].str.len().min() > 0
    # The input columns come back with their values.
    assert result.rows["name"].tolist() == source["Name"].tolist()
    assert result.rows["rt"].tolist() == source["RT"].tolist()


def test_metrics_are_reported(result):
    metrics = result.metrics
    assert metrics["n_anchors_used"] > 0
    assert 0 < metrics["loo_rmsep"] < 1
    assert 0 < metrics["loo_q2"] <= 1
    assert math.isfinite(metrics["lohgo_rmsep"])
    assert 0 < metrics["coverage"] <= 1
    # The legacy single Log P line is reported beside it, and is far worse.
    assert metrics["log_p_line_loo_rmsep"] > 2 * metrics["loo_rmsep"]


def test_counts_add_up(result):
    counts = result.summary["counts"]
    assert sum(counts.values()) == 323
    assert counts["invalid"] == 0
    assert counts == result.rows["status"].value_counts().reindex(STATUSES, fill_value=0).to_dict()
