"""Rule 1 through the whole pipeline: what gets a prediction, how anchors are judged, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.params import Parameters
from analysis.pipeline import run_file
from tests.analysis.builders import csv_bytes, homologous_anchors


def analyse(rows, **params):
    return run_file(csv_bytes(rows), filename="t.csv", params=Parameters(**params))


def row_of(result, name):
    matches = result.rows[result.rows["name"] == name]
    assert len(matches) == 1, name
    return matches.iloc[0]


def base_rows():
    """GD1 and GT1 anchors over a range of carbons and two saturations, plus a little scatter."""
    rng = np.random.default_rng(7)
    rows = []
    for head, offset in (("GD1", 0.0), ("GT1", -0.55), ("GM1", 0.6)):
        for c in range(34, 43):
            for db in (1, 2):
                rt = 9.0 + offset + 0.75 * (c - 36) - 1.1 * (db - 1) + rng.normal(0, 0.02)
                rows.append((f"{head}({c}:{db};O2)", round(rt, 3), 1e6, 1.0, "T"))
    return rows


def test_a_composition_no_anchor_varies_is_not_predicted_and_says_why():
    rows = [*base_rows(), ("GD1(36:1;O3)", 8.5, 100000.0, 0.0, "F")]
    row = row_of(analyse(rows), "GD1(36:1;O3)")
    assert row["status"] == "unassessed"
    assert "ceramide oxygens = 3 but every anchor has 2" in row["reason"]
    assert np.isnan(row["predicted_rt"])


def test_a_term_resting_on_one_anchor_is_set_aside():
    neugc = [("GD1+NeuGc(36:1;O2)", 8.4, 1e6, 0.0, "T"), ("GD1+NeuGc(38:1;O2)", 9.9, 1e5, 0.0, "F")]
    rows = [*base_rows(), *neugc]
    result = analyse(rows)
    for name in ("GD1+NeuGc(36:1;O2)", "GD1+NeuGc(38:1;O2)"):
        row = row_of(result, name)
        assert row["status"] == "unassessed"
        assert "only 1 anchor" in row["reason"]
    assert "neugc" not in result.models[0]["formula"]


def test_a_wrong_anchor_is_screened_out_and_called_an_outlier():
    rows = [row for row in base_rows() if row[0] != "GD1(37:1;O2)"]
    wrong = ("GD1(37:1;O2)", 12.5, 1e6, 1.0, "T")  # about 2.8 min later than the series predicts
    result = analyse([*rows, wrong])
    row = row_of(result, "GD1(37:1;O2)")
    assert {"excluded_anchor", "anchor_inconsistent"} <= set(row["flags"])
    assert row["status"] == "outlier"
    assert "MS/MS-confirmed" in row["reason"] and "excluded from the fit by anchor screening" in row["reason"]
    model = result.models[0]
    assert model["n_excluded"] == 1
    assert model["excluded_anchors"][0]["name"] == "GD1(37:1;O2)"
    # The fit is not dragged: the other anchors stay within their intervals.
    others = result.rows[(result.rows["name"] != "GD1(37:1;O2)")]
    assert (others["status"] == "valid").all()


def test_head_group_without_anchor_is_extrapolated_but_predicted():
    rows = [*base_rows(), ("GQ1(36:1;O2)", 7.9, 100000.0, 0.0, "F")]
    row = row_of(analyse(rows), "GQ1(36:1;O2)")
    assert "extrapolated" in row["flags"]
    assert "head group GQ1: 0 anchors" in row["reason"]
    assert row["var_head"] > 0
    assert np.isfinite(row["predicted_rt"])


@pytest.mark.parametrize(
    "anchors, expected",
    [
        (0, "only 0 usable anchors"),
        (1, "only 1 usable anchor "),
        (4, "only 4 usable anchors"),
    ],
)
def test_too_few_anchors_leaves_every_row_unassessed_with_the_reason(anchors, expected):
    rows = [
        (f"GD1({c}:1;O2)", 9 + 0.75 * (c - 36), 1e6, 1.0, "T" if i < anchors else "F")
        for i, c in enumerate(range(30, 40))
    ]
    result = analyse(rows)
    assert (result.rows["status"] == "unassessed").all()
    assert expected in result.summary["model"]
    assert result.rows["reason"].str.contains("no RT model").all()


def test_identical_anchor_compositions_give_no_model():
    rows = [("GD1(36:1;O2)", 9.0 + 0.01 * i, 1e6, 1.0, "T") for i in range(6)]
    rows += [("GD1(38:1;O2)", 10.5, 1e6, 2.0, "F")]
    result = analyse(rows)
    assert "same composition" in result.summary["model"]
    assert (result.rows["status"] == "unassessed").all()


def test_an_exactly_determined_fit_is_not_called_a_success():
    # Six anchors, six estimable terms (intercept, carbons, curvature, double bonds, sialic, neutral).
    names = ["GD1(34:1;O2)", "GD1(36:1;O2)", "GD1(40:1;O2)", "GD1(36:2;O2)", "GT1(36:1;O2)", "GM2(36:1;O2)"]
    rows = [(name, 8.0 + i * 0.7, 1e6, 1.0, "T") for i, name in enumerate(names)]
    result = analyse(rows, min_anchors=5)
    assert result.summary["model"].startswith("not fitted")
    assert "pass exactly through every anchor" in result.summary["model"]


def test_anchor_is_judged_without_itself():
    """An anchor's prediction equals the prediction made when it is not an anchor at all."""
    rows = homologous_anchors(carbons=range(32, 44), double_bonds=(1, 2))
    rng = np.random.default_rng(3)
    rows = [(n, round(rt + rng.normal(0, 0.03), 3), v, lp, a) for n, rt, v, lp, a in rows]
    probe = 5
    as_anchor = row_of(analyse(rows), rows[probe][0])
    rows[probe] = (*rows[probe][:4], "F")
    as_peak = row_of(analyse(rows), rows[probe][0])
    assert as_anchor["predicted_rt"] == pytest.approx(as_peak["predicted_rt"], abs=1e-4)
    assert "judged by the model fitted without it" in as_anchor["reason"]


def test_prediction_intervals_are_calibrated():
    """Peaks simulated from the model fall inside their 95% interval about 95% of the time.

    Anchors and judged peaks are different species (anchors at even carbon numbers, peaks at odd
    ones and at the ends), so every peak is the main peak of its own name, judged by the full fit.
    """
    rng = np.random.default_rng(11)
    sigma = 0.05
    rows = []
    for c in range(30, 48):
        for db in (0, 1, 2):
            for head, offset in (("GD1", 0.0), ("GT1", -0.55), ("GM1", 0.45)):
                truth = 9.0 + offset + 0.75 * (c - 36) - 1.1 * (db - 1)
                anchor = "T" if c % 2 == 0 else "F"
                rows.append((f"{head}({c}:{db};O2)", round(truth + rng.normal(0, sigma), 4), 1e6, 1.0, anchor))
    result = analyse(rows, alpha=0.05)
    judged = result.rows[result.rows["anchor"] == False]  # noqa: E712
    assert judged["pi_low"].notna().all()
    inside = ((judged["rt"] >= judged["pi_low"]) & (judged["rt"] <= judged["pi_high"])).mean()
    n = len(judged)
    # Binomial standard error of a 95% coverage over n peaks; allow four of them.
    assert abs(inside - 0.95) <= 4 * np.sqrt(0.95 * 0.05 / n)
    # And with every peak genuine, false-discovery control should call (almost) none outliers.
    assert (judged["status"] == "outlier").sum() <= max(1, int(0.05 * n))


@pytest.mark.parametrize("seed", range(4))
def test_benjamini_hochberg_matches_scipy(seed):
    from scipy.stats import false_discovery_control

    from analysis.model import benjamini_hochberg

    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 1e-3, size=5), [0.5, 0.5, 1.0]])
    assert np.allclose(benjamini_hochberg(p), false_discovery_control(p, method="bh"), rtol=1e-12, atol=0)
