"""Rule 4: O-acetylated species against their base (science.md §4)."""

from __future__ import annotations

import dataclasses

import pytest

from analysis.names import parse_name
from analysis.oacetyl import base_name
from analysis.pipeline import run_file
from tests.analysis.builders import csv_bytes


@pytest.mark.parametrize(
    "name, base",
    [
        ("GD1+OAc(36:1;O2)", "GD1(36:1;O2)"),
        ("GQ1+2OAc(36:1;O2)", "GQ1+OAc(36:1;O2)"),
        ("GT1b+3OAc(38:1;O2)", "GT1b+2OAc(38:1;O2)"),
        ("GD1+dHex+OAc(36:1;O2)", "GD1+dHex(36:1;O2)"),
        ("GD1+Hex+HexNAc+OAc(36:1;O2)", "GD1+Hex+HexNAc(36:1;O2)"),
        ("GP1+10OAc(36:1;O2)", "GP1+9OAc(36:1;O2)"),
    ],
)
def test_base_is_one_oacetyl_fewer_and_agrees_with_the_parser(name, base):
    assert base_name(name) == base
    parsed = parse_name(name)
    mods = tuple((m, c - 1 if m == "OAc" else c) for m, c in parsed.mods)
    assert base == dataclasses.replace(parsed, mods=tuple((m, c) for m, c in mods if c)).canonical


def oac_table(rows, tolerance=0.05):
    from analysis.params import Parameters

    result = run_file(csv_bytes(rows), filename="t.csv", params=Parameters(oac_tolerance=tolerance))
    return result, result.oacetylation.set_index("oac_row")


def test_pairs_follow_isomer_series_and_flag_early_elution():
    rows = [
        ("GD1(36:1;O2)", 9.10, 1e6, 1.5, "F"),  # row 1, series 1
        ("GD1(36:1;O2)", 9.55, 8e5, 1.5, "F"),  # row 2, series 2
        ("GD1+OAc(36:1;O2)", 9.19, 3e5, 2.1, "F"),  # row 3 pairs with row 1: +0.09
        ("GD1+OAc(36:1;O2)", 9.40, 2e5, 2.1, "F"),  # row 4 pairs with row 2: -0.15, too early
    ]
    result, table = oac_table(rows)
    assert table.loc[3, "base_row"] == 1 and table.loc[3, "shift"] == pytest.approx(0.09)
    assert table.loc[3, "verdict"].startswith("consistent")
    assert table.loc[4, "base_row"] == 2 and table.loc[4, "shift"] == pytest.approx(-0.15)
    assert table.loc[4, "verdict"].startswith("inconsistent")
    flags = dict(zip(result.rows["row"], result.rows["flags"], strict=True))
    assert "oac_inconsistent" in flags[4] and "oac_inconsistent" not in flags[3]


def test_tolerance_is_the_boundary():
    # 0.06 min apart: outside the fragment window, so the two are judged as an O-acetyl pair.
    rows = [("GD1(36:1;O2)", 9.10, 1e6, 1.5, "F"), ("GD1+OAc(36:1;O2)", 9.04, 3e5, 2.1, "F")]
    assert oac_table(rows, tolerance=0.07)[1].loc[2, "verdict"].startswith("consistent")
    assert oac_table(rows, tolerance=0.05)[1].loc[2, "verdict"].startswith("inconsistent")


def test_a_base_absorbed_as_a_fragment_is_still_the_base():
    # The base co-elutes within the fragment window and is smaller, so Rule 5 absorbs it into its
    # larger O-acetylated form; Rule 4 still reports the pair, with a note, never "no base peak".
    rows = [("GD1(36:1;O2)", 9.10, 1e5, 1.5, "F"), ("GD1+OAc(36:1;O2)", 9.13, 3e5, 2.1, "F")]
    result, table = oac_table(rows)
    assert result.rows.loc[0, "status"] == "fragment"
    assert table.loc[2, "base_row"] == 1
    assert table.loc[2, "shift"] == pytest.approx(0.03)
    assert "in-source fragment" in table.loc[2, "note"]
    assert (result.oacetylation["verdict"] != "no base peak").all()


def test_main_peaks_pair_first_whatever_their_series():
    rows = [
        ("GD1(36:1;O2)", 9.10, 1e5, 1.5, "F"),  # row 1, small first isomer
        ("GD1(36:1;O2)", 9.55, 1e6, 1.5, "F"),  # row 2, the base's main peak
        ("GD1+OAc(36:1;O2)", 9.64, 3e5, 2.1, "F"),  # row 3, the OAc main peak: pairs with row 2
    ]
    table = oac_table(rows)[1]
    assert table.loc[3, "peak"] == "main"
    assert table.loc[3, "base_row"] == 2 and table.loc[3, "shift"] == pytest.approx(0.09)


def test_extra_peaks_never_pair_across_a_tenfold_volume_difference():
    rows = [
        ("GD1(36:1;O2)", 9.10, 1e6, 1.5, "F"),
        ("GD1(36:1;O2)", 9.55, 2e4, 1.5, "F"),
        ("GD1+OAc(36:1;O2)", 9.19, 3e5, 2.1, "F"),
        ("GD1+OAc(36:1;O2)", 9.64, 3e5, 2.1, "F"),  # same rank as row 2 but 15× larger
    ]
    table = oac_table(rows)[1]
    assert table.loc[4, "verdict"].startswith("not paired") and "15×" in table.loc[4, "verdict"]


def test_two_oacetyl_groups_are_checked_against_one():
    rows = [("GQ1+OAc(36:1;O2)", 8.45, 1e6, -2.8, "F"), ("GQ1+2OAc(36:1;O2)", 8.52, 3e5, -2.3, "F")]
    table = oac_table(rows)[1]
    assert table.loc[2, "base_name"] == "GQ1+OAc(36:1;O2)" and table.loc[2, "base_row"] == 1


def test_missing_base_is_reported_without_a_verdict():
    rows = [("GD3+OAc(39:1;O2)", 10.69, 1e6, 5.8, "F")]
    result, table = oac_table(rows)
    assert table.loc[1, "verdict"] == "no base peak"
    assert result.rows.loc[0, "flags"] == []


def test_unequal_series_counts_pair_only_the_dominant_peaks():
    rows = [
        ("GD1(36:1;O2)", 9.10, 1e6, 1.5, "F"),
        ("GD1+OAc(36:1;O2)", 9.19, 3e5, 2.1, "F"),  # dominant: pairs
        ("GD1+OAc(36:1;O2)", 9.70, 1e5, 2.1, "F"),  # not paired
    ]
    table = oac_table(rows)[1]
    assert table.loc[2, "base_row"] == 1
    assert table.loc[3, "verdict"].startswith("not paired")


def test_real_sample_shift_median_is_small_and_positive(porcine_csv):
    result = run_file(porcine_csv)
    median = result.summary["oac_median_shift"]
    assert 0 < median < 0.15  # science.md: about +0.09 min in reversed phase
