"""The engine against simulated extracts whose truth is known (analysis.synthetic).

Two worlds, six seeds each:

- the built-in example (composition effects, a head-group, ceramide and species misfit the model
  does not have, isomer pairs): injected misassignments sit at least 0.8 min from their
  labelled species' RT while the simulated scatter about the model is about 0.06 min, so nearly
  all assessable ones must be found; Benjamini–Hochberg bounds the expected false share at 5 %
  when the model holds, and the deliberate misfit occasionally clusters false calls in one
  extract, so precision is required on average (≥ 0.85) with a floor for a single extract;
- the calibration world of science.md: every prefix has its own RT offset (SD 0.2 min), which
  no anchor reveals for a prefix without anchors. Clean rows of such prefixes must be called
  outliers at most 5 % of the time, and injected shifts must still be found (precision and
  recall ≥ 0.85 on average over the seeds).

Fragments: injected ones co-elute within 0.025 min and carry 3–30 % of their precursor's volume,
so every one must be found. Genuine peaks meet Rule 5 too, by coincidence (a GD1 a-isomer elutes
within a few hundredths of a minute of GT1+OAc's b-isomer, in the sample as in the generator), and
the rule cannot tell them apart; how often that happens is measured in test_generator_is_not_more_
crowded_than_the_sample, and precision at 300 rows is asserted at the level that density allows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.pipeline import run_file
from analysis.synthetic import generate_extract

SEEDS = (0, 1, 2, 3, 4, 5)
ROWS = 600


def run(rows: int, seed: int, **options) -> pd.DataFrame:
    extract = generate_extract(rows, seed, **options)
    result = run_file(extract.to_csv_bytes(), filename=f"synthetic-{seed}.csv")
    return result, result.rows.merge(extract.truth, on="row", suffixes=("", "_true"))


@pytest.fixture(scope="module")
def runs():
    return [run(ROWS, seed)[1] for seed in SEEDS]


@pytest.fixture(scope="module")
def offset_world():
    return [run(ROWS, seed, prefix_offset_sd=0.2)[1] for seed in SEEDS]


def precision_recall(rows: pd.DataFrame) -> tuple[float, float]:
    injected = rows["kind"] == "outlier"
    assessable = rows["status"].isin(["valid", "outlier"])
    called = rows["status"] == "outlier"
    assert (injected & assessable).sum() >= 10  # enough to measure
    return (injected & called).sum() / max(called.sum(), 1), (injected & called).sum() / (injected & assessable).sum()


def test_every_row_of_every_extract_gets_a_status(runs):
    for rows in runs:
        assert len(rows) == ROWS
        assert rows["status"].notna().all()


def test_injected_outliers_are_found(runs):
    precision, recall = zip(*(precision_recall(rows) for rows in runs), strict=True)
    assert np.mean(recall) >= 0.9 and min(recall) >= 0.8
    assert np.mean(precision) >= 0.85 and min(precision) >= 0.7


def test_clean_rows_of_prefixes_without_anchors_are_rarely_called(offset_world):
    called, clean = 0, 0
    for rows in offset_world:
        anchored = set(rows.loc[rows["anchor_true"] & (rows["status"] != "fragment"), "prefix"])
        mask = (rows["kind"] == "genuine") & rows["status"].isin(["valid", "outlier"]) & ~rows["prefix"].isin(anchored)
        called += int((rows.loc[mask, "status"] == "outlier").sum())
        clean += int(mask.sum())
    assert clean >= 300
    assert called / clean <= 0.05


def test_shifts_are_still_found_where_prefixes_have_their_own_offsets(offset_world):
    precision, recall = zip(*(precision_recall(rows) for rows in offset_world), strict=True)
    assert np.mean(precision) >= 0.85
    assert np.mean(recall) >= 0.85


def test_the_prefix_variance_is_calibrated_from_the_data(offset_world):
    # In the offset world the prefix variance must come out clearly above zero; without offsets
    # (see test_injected_outliers_are_found) nothing forces it.
    sds = [rows.loc[rows["var_prefix"] > 0, "var_prefix"].median() ** 0.5 for rows in offset_world]
    assert np.median(sds) >= 0.1


def test_the_injected_wrong_anchor_is_excluded(runs):
    for rows in runs:
        wrong_anchor = rows[(rows["kind"] == "outlier") & rows["anchor_true"]]
        assert len(wrong_anchor) == 1
        assert {"excluded_anchor", "anchor_inconsistent"} <= set(wrong_anchor["flags"].iloc[0])


def test_injected_fragments_are_found_with_a_plausible_precursor(runs):
    for rows in runs:
        injected = rows[rows["kind"] == "fragment"]
        assert len(injected) >= 30
        assert (injected["status"] == "fragment").all()
        by_row = rows.set_index("row")
        for _, fragment in injected.iterrows():
            chosen = by_row.loc[int(fragment["fragment_of"])]
            true = by_row.loc[int(fragment["fragment_of_true"])]
            # The rule prefers the most abundant co-eluting precursor, so it may name a larger one
            # than the peak the fragment was made from, never a smaller one.
            assert chosen["volume"] >= true["volume"]


def test_fragment_calls_at_the_size_of_a_real_extract():
    """Recall 1; precision ≥ 0.8 on average at 300 rows (measured 0.84, see docs/methods.md)."""
    precisions = []
    for seed in SEEDS:
        _, rows = run(300, seed)
        called, true = rows["status"] == "fragment", rows["kind"] == "fragment"
        assert (called & true).sum() == true.sum()
        precisions.append((called & true).sum() / called.sum())
    assert np.mean(precisions) >= 0.8
    assert min(precisions) >= 0.7


def test_generator_is_not_more_crowded_than_the_sample(porcine_csv):
    """Accidental co-elution of a composition with a larger one, per row, as often as in the sample or less.

    A pair Rule 5 refuses to merge because the larger composition is the smaller peak ("review")
    is a co-elution that is not fragmentation; its rate per row measures how crowded a table is.
    """

    def review_rate(result):
        return result.rows["flags"].map(lambda f: "fragment_review" in f).mean()

    sample = review_rate(run_file(porcine_csv))
    generated = np.mean([review_rate(run(300, seed)[0]) for seed in SEEDS])
    assert generated <= sample


def test_genuine_peaks_called_fragments_meet_the_rule_by_coincidence(runs):
    for rows in runs:
        valid = rows[rows["status"] != "invalid"]
        false_calls = rows[(rows["kind"] == "genuine") & (rows["status"] == "fragment")]
        for _, peak in false_calls.iterrows():
            partners = valid[
                (valid["carbons"] == peak["carbons"])
                & (valid["double_bonds"] == peak["double_bonds"])
                & (valid["oxygen"] == peak["oxygen"])
                & ((valid["rt"] - peak["rt"]).abs() <= 0.05 + 1e-9)
                & (valid["volume"] >= peak["volume"])
            ]
            assert any(_contains(partner, peak) for _, partner in partners.iterrows()), peak["name"]


def _contains(big: pd.Series, small: pd.Series) -> bool:
    from analysis.names import COMPOSITION_UNITS

    bigger = [big[u] >= small[u] for u in COMPOSITION_UNITS]
    strictly = [big[u] > small[u] for u in COMPOSITION_UNITS]
    return all(bigger) and any(strictly)
