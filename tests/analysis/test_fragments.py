"""Rule 5: in-source fragments (science.md §4)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.fragments import find_fragments
from analysis.pipeline import load_table
from tests.analysis.builders import csv_bytes


def calls(rows, window=0.05, ratio=1.0):
    table = load_table(csv_bytes(rows), filename="t.csv")
    frame = table.frame
    result = find_fragments(frame, frame["valid"].to_numpy(), window, ratio)
    by_row = dict(zip(frame["row"], range(len(frame)), strict=True))
    return result, by_row


def test_smaller_coeluting_subset_is_a_fragment_of_the_larger_peak():
    result, at = calls(
        [
            ("GT1(36:1;O2)", 8.701, 5e7, -0.9, "T"),
            ("GD1(36:1;O2)", 8.702, 4e5, 1.5, "F"),
        ]
    )
    assert result.is_fragment.tolist() == [False, True]
    assert result.fragment_of[at[2]] == 1
    assert result.merged_volume[at[1]] == pytest.approx(5e7 + 4e5)
    assert np.isnan(result.merged_volume[at[2]])
    assert result.pairs.loc[0, "lost"] == "1 sialic acid"


@pytest.mark.parametrize("delta, expected", [(0.05, True), (0.0499, True), (0.0501, False), (-0.05, True)])
def test_window_is_inclusive(delta, expected):
    result, _ = calls([("GT1(36:1;O2)", 10.0, 1e6, 0, "T"), ("GD1(36:1;O2)", round(10.0 + delta, 4), 1e5, 0, "F")])
    assert bool(result.is_fragment[1]) is expected


def test_different_ceramide_is_never_a_fragment():
    result, _ = calls(
        [("GT1(38:1;O2)", 10.0, 1e6, 0, "T"), ("GD1(36:1;O2)", 10.0, 1e5, 0, "F"), ("GT1(36:1;O3)", 10.0, 1e6, 0, "T")]
    )
    assert not result.is_fragment[1]


def test_more_sugars_alone_is_not_enough_the_composition_must_contain_the_fragment():
    # GT1 has more sialic acids but GM1+dHex carries a dHex that GT1 lacks.
    result, _ = calls([("GT1(36:1;O2)", 10.0, 1e6, 0, "T"), ("GM1+dHex(36:1;O2)", 10.0, 1e5, 0, "F")])
    assert not result.is_fragment.any()


def test_identical_composition_is_not_a_fragment():
    result, _ = calls([("GD1(36:1;O2)", 10.0, 1e6, 0, "T"), ("GD1(36:1;O2)", 10.01, 1e5, 0, "F")])
    assert not result.is_fragment.any()


def test_small_precursor_is_flagged_for_review_not_merged():
    result, _ = calls([("GT1(36:1;O2)", 10.0, 1e4, 0, "F"), ("GD1(36:1;O2)", 10.0, 1e6, 0, "T")])
    assert not result.is_fragment.any()
    assert result.review.tolist() == [True, True]
    assert result.pairs.loc[0, "decision"].startswith("review")


def test_ratio_parameter_is_the_boundary():
    rows = [("GT1(36:1;O2)", 10.0, 1e5, 0, "F"), ("GD1(36:1;O2)", 10.0, 1e6, 0, "T")]
    assert calls(rows, ratio=0.1)[0].is_fragment[1]
    assert not calls(rows, ratio=0.11)[0].is_fragment[1]
    assert not calls(rows)[0].is_fragment[1]  # the default 1.0: the precursor must be the larger


def test_the_largest_volume_wins_not_the_largest_composition():
    # science.md Rule 5: a 30-million-count GD1 ladder must not go to a 49-thousand minor species.
    rows = [
        ("GM1(36:1;O2)", 9.654, 4.7e5, 0, "F"),  # fragment candidate of both below
        ("GD1(36:1;O2)", 9.652, 2.96e7, 0, "T"),  # larger volume, smaller composition
        ("GD1+Hex+HexNAc+OAc(36:1;O2)", 9.618, 4.9e4, 0, "F"),  # largest composition, tiny
    ]
    result, _ = calls(rows)
    assert result.fragment_of[0] == 2
    assert not result.is_fragment[1]  # 600× the minor species: never its fragment
    assert result.merged_volume[1] == pytest.approx(2.96e7 + 4.7e5)
    assert result.merged_volume[2] == pytest.approx(4.9e4)


def test_among_equal_volumes_the_nearest_rt_wins_then_composition():
    rows = [
        ("GM1(36:1;O2)", 10.00, 1e5, 0, "F"),
        ("GD1(36:1;O2)", 10.04, 1e6, 0, "F"),
        ("GD1+OAc(36:1;O2)", 10.01, 1e6, 0, "F"),
    ]
    result, _ = calls(rows)
    assert result.fragment_of[0] == 3


def test_no_merge_into_a_smaller_precursor_at_the_default_ratio():
    rows = [("GD1(36:1;O2)", 10.0, 2e6, 0, "T"), ("GT1(36:1;O2)", 10.01, 1e6, 0, "F")]
    result, _ = calls(rows)
    assert not result.is_fragment.any()
    assert result.review.tolist() == [True, True]


def test_a_base_is_not_absorbed_into_its_own_smaller_o_acetylated_form():
    # With a permissive ratio the OAc form would qualify as the base's precursor; it must be the larger.
    rows = [("GD1(36:1;O2)", 9.10, 1e6, 0, "F"), ("GD1+OAc(36:1;O2)", 9.13, 3e5, 0, "F")]
    assert not calls(rows, ratio=0.1)[0].is_fragment.any()
    rows = [("GD1(36:1;O2)", 9.10, 1e5, 0, "F"), ("GD1+OAc(36:1;O2)", 9.13, 3e5, 0, "F")]
    result, _ = calls(rows, ratio=0.1)
    assert result.is_fragment.tolist() == [True, False]
    assert result.pairs.loc[0, "decision"] == "merged: base absorbed into its larger O-acetylated form"


def test_chains_resolve_to_the_peak_that_is_not_a_fragment():
    # GM1 co-elutes with GD1 only; GD1 co-elutes with GT1: GM1 -> GD1 -> GT1.
    rows = [
        ("GM1(36:1;O2)", 10.00, 1e4, 0, "F"),
        ("GD1(36:1;O2)", 10.04, 1e5, 0, "F"),
        ("GT1(36:1;O2)", 10.08, 1e6, 0, "T"),
    ]
    result, _ = calls(rows)
    assert result.fragment_of.tolist() == [3, 3, 0]
    assert "chained" in result.pairs.loc[0, "lost"]


def test_result_does_not_depend_on_row_order():
    rows = [
        ("GM1(36:1;O2)", 10.00, 1e5, 0, "F"),
        ("GD1(36:1;O2)", 10.01, 5e6, 0, "F"),
        ("GD1(36:1;O2)", 10.01, 5e6, 0, "F"),
        ("GT1(36:1;O2)", 10.02, 1e6, 0, "T"),
        ("GT1+OAc(36:1;O2)", 10.03, 1e6, 0, "F"),
    ]
    first, _ = calls(rows)
    names = [r[0] for r in rows]
    for permutation in ([4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        shuffled, _ = calls([rows[i] for i in permutation])
        fragment_names = sorted(names[permutation[i]] for i in np.flatnonzero(shuffled.is_fragment))
        assert fragment_names == sorted(names[i] for i in np.flatnonzero(first.is_fragment))
        precursors = sorted(names[permutation[r - 1]] for r in shuffled.fragment_of if r)
        assert precursors == sorted(names[r - 1] for r in first.fragment_of if r)


def test_real_sample_fragments_coelute_within_the_window(porcine_csv):
    table = load_table(porcine_csv)
    frame = table.frame
    result = find_fragments(frame, frame["valid"].to_numpy(), 0.05, 1.0)
    merged = result.pairs[result.pairs["decision"].str.startswith("merged")]
    assert len(merged) > 0
    assert merged["delta_rt"].abs().max() <= 0.05 + 1e-9
    assert (merged["volume_ratio"] >= 1.0).all()
    # The science contract: genuine O-acetyl/base pairs (median shift 0.09 min) must not be swallowed
    # as fragments merely for losing an O-acetyl group at a larger RT difference.
    only_oac = merged[merged["lost"].str.startswith("1 O-acetyl group")]
    assert (only_oac["delta_rt"].abs() <= 0.05 + 1e-9).all()
