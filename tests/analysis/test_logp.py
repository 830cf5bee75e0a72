"""The Log P input check (science.md, Log P consistency)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from analysis.logp import LOGP_TOLERANCE, check_logp, huber_fit
from analysis.pipeline import load_table
from tests.analysis.builders import csv_bytes


def log_p(prefix_base: float, c: int, db: int) -> float:
    return round(prefix_base + 0.54 * (c - 36) - 0.83 * (db - 1) + (0.35 if db == 0 else 0.0), 2)


def table(rows):
    frame = load_table(csv_bytes(rows), filename="t.csv").frame
    return frame, check_logp(frame, frame["valid"].to_numpy())


def additive_rows():
    rows = []
    for prefix, base in (("GD1", 1.5), ("GT1", -0.9), ("GM1+dHex", 2.9)):
        for c in range(34, 43):
            for db in (0, 1, 2):
                rows.append((f"{prefix}({c}:{db};O2)", 9.0, 1e6, log_p(base, c, db), "F"))
    return rows


def test_huber_fit_is_statsmodels_rlm_with_a_dummy_per_group():
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 6, 120)
    x = rng.normal(size=(120, 3))
    y = np.array([0.5, -1, 2])[None, :] @ x.T + np.arange(6)[groups] + rng.standard_t(2, 120) * 0.1
    y = y.ravel()
    beta, fitted = huber_fit(x, y, groups)
    dummies = (groups[:, None] == np.arange(6)[None, :]).astype(float)
    reference = sm.RLM(y, np.column_stack([dummies, x]), M=sm.robust.norms.HuberT()).fit()
    assert beta == pytest.approx(reference.params[6:], abs=2e-3)
    assert fitted == pytest.approx(reference.fittedvalues, abs=2e-3)


def test_an_additive_table_with_a_uniform_saturation_offset_is_clean():
    _, check = table(additive_rows())
    assert not check.flagged.any()
    assert check.slopes["carbons"] == pytest.approx(0.54, abs=0.01)
    assert check.status.startswith("checked")


def test_a_value_off_the_pattern_is_flagged_with_its_deviation():
    rows = additive_rows()
    bad = next(i for i, r in enumerate(rows) if r[0] == "GT1(38:1;O2)")
    rows[bad] = (*rows[bad][:3], rows[bad][3] + LOGP_TOLERANCE + 0.3, "F")
    _, check = table(rows)
    assert check.flagged.sum() == 1 and check.flagged[bad]
    assert "departs by +0.8" in check.notes[bad]
    assert check.table["name"].tolist() == ["GT1(38:1;O2)"]


def test_a_value_that_falls_while_the_chain_grows_is_flagged():
    rows = additive_rows()
    swap = next(i for i, r in enumerate(rows) if r[0] == "GT1(37:1;O2)")
    rows[swap] = (*rows[swap][:3], round(rows[swap][3] - 0.6, 2), "F")  # now below GT1(36:1;O2)
    _, check = table(rows)
    assert check.flagged[swap]
    assert "must rise with the chain length" in check.notes[swap]


def test_repeated_peaks_of_one_name_count_once_and_are_all_flagged():
    rows = additive_rows()
    bad = next(i for i, r in enumerate(rows) if r[0] == "GD1(40:1;O2)")
    wrong = (*rows[bad][:3], rows[bad][3] - 1.0, "F")
    rows[bad] = wrong
    rows.append((wrong[0], 10.5, 1e5, wrong[3], "F"))
    _, check = table(rows)
    assert check.flagged[bad] and check.flagged[-1]
    assert check.table.loc[0, "rows"].count(",") == 1


def test_too_few_rows_with_a_log_p_are_not_checked():
    _, check = table(additive_rows()[:3])
    assert not check.flagged.any()
    assert check.status.startswith("not checked")
