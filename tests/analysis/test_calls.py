"""Rule 1 calls on small tables built for one question each: main and extra peaks, isomer series,
series ambiguity, extrapolation and the calibrated variance components (science.md §4)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.params import Parameters
from analysis.pipeline import run_file
from analysis.variance import MIN_CALIBRATION, calibrate_by_group, robust_mean_square
from tests.analysis.builders import csv_bytes

SERIES = 0.45  # GD1 a→b spacing of the tables below


def analyse(rows, **params):
    return run_file(csv_bytes(rows), filename="t.csv", params=Parameters(**params))


def rt_of(head: str, c: int, db: int = 1, mods: float = 0.0) -> float:
    offsets = {"GD1": 0.0, "GT1": -0.55, "GM1": 0.55, "GQ1": -1.1}
    return 9.0 + offsets[head] + 0.8 * (c - 36) - 1.05 * (db - 1) + mods


def anchored_world(rng=None, scatter=0.01):
    """GD1 anchors on two series (so GD1's isomer offset is learned); GT1 and GM1 anchors on one."""
    rng = rng or np.random.default_rng(0)
    rows = []
    for c in range(34, 43):
        for db in (1, 2):
            a = rt_of("GD1", c, db) + rng.normal(0, scatter)
            rows.append((f"GD1({c}:{db};O2)", round(a, 3), 2e6, 1.0, "T"))
            rows.append((f"GD1({c}:{db};O2)", round(a + SERIES + rng.normal(0, scatter), 3), 1.5e6, 1.0, "T"))
            for head in ("GT1", "GM1"):
                rt = round(rt_of(head, c, db) + rng.normal(0, scatter), 3)
                rows.append((f"{head}({c}:{db};O2)", rt, 1e6, 1.0, "T"))
    return rows


def row(result, name, rt):
    match = result.rows[(result.rows["name"] == name) & (result.rows["rt"] == rt)]
    assert len(match) == 1, (name, rt)
    return match.iloc[0]


# ---------------------------------------------------------------- main and extra peaks


def test_the_largest_peak_carries_the_identity_and_the_others_are_extra_peaks():
    rows = [r for r in anchored_world() if r[0] != "GT1(37:1;O2)"]
    main = round(rt_of("GT1", 37, 1) + 0.01, 3)
    rows += [("GT1(37:1;O2)", main, 5e5, 1.0, "F"), ("GT1(37:1;O2)", round(main + 1.6, 3), 2e4, 1.0, "F")]
    result = analyse(rows)
    first, second = row(result, "GT1(37:1;O2)", main), row(result, "GT1(37:1;O2)", round(main + 1.6, 3))
    assert first["main_peak_row"] == first["row"] and "extra_peak" not in first["flags"]
    assert "extra_peak" in second["flags"]
    assert second["main_peak_row"] == first["row"]
    assert second["offset_from_main"] == pytest.approx(1.6)
    assert second["volume_fraction"] == pytest.approx(0.04)
    assert second["reason"].startswith("extra peak of GT1(37:1;O2): 1.60 min after its main peak")
    assert "no learned isomer offset for GT1" in second["reason"]


def test_an_extra_peak_at_the_learned_offset_fits_and_one_far_away_does_not():
    rows = [r for r in anchored_world() if not r[0].startswith("GD1(37:1")]
    a = round(rt_of("GD1", 37), 3)
    rows += [
        ("GD1(37:1;O2)", a, 1e6, 1.0, "F"),
        ("GD1(37:1;O2)", round(a + SERIES + 0.01, 3), 8e5, 1.0, "F"),
        ("GD1(37:1;O2)", round(a + 2.5, 3), 5e4, 1.0, "F"),
    ]
    result = analyse(rows)
    b, far = row(result, "GD1(37:1;O2)", round(a + SERIES + 0.01, 3)), row(result, "GD1(37:1;O2)", round(a + 2.5, 3))
    assert b["status"] == "valid" and b["judged_series"] == 2
    assert "matches GD1's isomer offset" in b["reason"]
    assert far["status"] == "outlier"
    assert "far from every plausible isomer position of GD1(37:1;O2)" in far["reason"]
    assert "does not match GD1's isomer offset" in far["reason"]


def test_when_the_main_peak_is_an_outlier_every_peak_of_the_name_says_so():
    rows = [r for r in anchored_world() if not r[0].startswith("GM1(39:1")]
    wrong = round(rt_of("GM1", 39) + 2.0, 3)
    rows += [("GM1(39:1;O2)", wrong, 1e6, 1.0, "F"), ("GM1(39:1;O2)", round(wrong + 0.4, 3), 1e5, 1.0, "F")]
    result = analyse(rows)
    main, extra = row(result, "GM1(39:1;O2)", wrong), row(result, "GM1(39:1;O2)", round(wrong + 0.4, 3))
    assert main["status"] == "outlier" and main["reason"].startswith("identity doubtful")
    assert "main_peak_outlier" in extra["flags"]
    assert "is itself an identity outlier" in extra["reason"]
    assert result.summary["identity_outliers"] >= 1


def test_an_anchors_series_comes_from_the_anchors_of_its_name_only():
    rows = anchored_world()
    a = next(r[1] for r in rows if r[0] == "GD1(38:1;O2)")
    rows.append(("GD1(38:1;O2)", round(a - 0.3, 3), 1e4, 1.0, "F"))  # a small earlier non-anchor peak
    result = analyse(rows)
    anchors = result.rows[(result.rows["name"] == "GD1(38:1;O2)") & (result.rows["anchor"] == True)]  # noqa: E712
    assert sorted(anchors["judged_series"].tolist()) == [1, 2]


def test_without_any_second_isomer_among_the_anchors_extra_peaks_are_not_judged():
    rows = [r for r in anchored_world() if not (r[0].startswith("GD1") and r[2] == 1.5e6)]
    rows.append(("GT1(36:1;O2)", round(rt_of("GT1", 36) + 0.7, 3), 1e4, 1.0, "F"))
    result = analyse(rows)
    extra = row(result, "GT1(36:1;O2)", round(rt_of("GT1", 36) + 0.7, 3))
    assert extra["status"] == "unassessed"
    assert "no anchors show a second isomer series" in extra["reason"]


# ---------------------------------------------------------------- series ambiguity


def test_a_modification_learned_from_single_anchors_is_read_both_ways():
    """GD1+dHex anchors one per species: dHex is +0.35 as a isomers or −0.10 as b; GM1+dHex sits at −0.10."""
    rows = anchored_world()
    for c in (36, 38, 40):
        rows.append((f"GD1+dHex({c}:1;O2)", round(rt_of("GD1", c) + 0.35, 3), 5e5, 1.0, "T"))
    gm1 = [(f"GM1+dHex({c}:1;O2)", round(rt_of("GM1", c) - 0.10, 3), 3e5, 1.0, "F") for c in (35, 36, 37, 38, 39, 41)]
    result = analyse(rows + gm1)
    ambiguity = result.models[0]["series_ambiguity"]
    assert [a["prefix"] for a in ambiguity] == ["GD1+dHex"]
    (effect,) = ambiguity[0]["effects"]
    assert effect["term"] == "dhex"
    assert effect["as_a"] == pytest.approx(0.35, abs=0.02)
    assert effect["as_a"] - effect["as_b"] == pytest.approx(SERIES, abs=0.02)
    for name, rt, *_ in gm1:
        peak = row(result, name, rt)
        assert "series_ambiguous" in peak["flags"]
        assert peak["status"] == "valid"
        # The interval spans both readings: the a reading's prediction lies inside it too.
        assert peak["pi_low"] <= rt <= peak["pi_high"]
        assert peak["pi_high"] - peak["pi_low"] > SERIES
        assert peak["var_series"] == pytest.approx((SERIES / 2) ** 2, rel=0.1)


# ---------------------------------------------------------------- extrapolation


def saturated_rows(n_saturated: int):
    rows = anchored_world()
    rows += [
        (f"GT1({c}:0;O2)", round(rt_of("GT1", c, 0) - 0.5, 3), 4e5, 1.0, "F")  # linear DB term: 0.5 too late
        for c in range(35, 35 + n_saturated)
    ]
    return rows


def test_saturated_species_are_widened_not_called_when_no_anchor_is_saturated():
    result = analyse(saturated_rows(6))
    saturated = result.rows[result.rows["double_bonds"] == 0]
    assert (saturated["status"] == "valid").all()
    assert (saturated["var_extrapolation"] > 0.1).all()
    assert saturated["flags"].map(lambda f: "extrapolated" in f).all()
    assert saturated["reason"].str.contains("double bonds 0 outside the anchors' 1–2").all()
    component = next(c for c in result.models[0]["variance_components"] if c["component"].startswith("extrapolation"))
    assert component["calibrated"] and component["n"] == 6


def test_with_too_few_peaks_to_calibrate_the_width_is_the_terms_own_effect():
    assert MIN_CALIBRATION > 3
    result = analyse(saturated_rows(3))
    saturated = result.rows[result.rows["double_bonds"] == 0]
    slope = next(c["estimate"] for c in result.models[0]["coefficients"] if c["term"] == "double_bonds")
    assert saturated["var_extrapolation"].to_numpy() == pytest.approx(slope**2, rel=1e-3)
    assert saturated["reason"].str.contains("width assumed, too few peaks to calibrate it").all()


# ---------------------------------------------------------------- calibrated components


def test_new_species_carry_the_scatter_the_anchors_do_not_show():
    rng = np.random.default_rng(5)
    # GT1 species at odd carbons are not anchors and scatter by 0.1 min about the model.
    rows = [r for r in anchored_world(rng, scatter=0.01) if not (r[0].startswith("GT1") and int(r[0][4:6]) % 2)]
    rows += [
        (f"GT1({c}:{db};O2)", round(rt_of("GT1", c, db) + rng.normal(0, 0.1), 3), 1e6, 1.0, "F")
        for c in (35, 37, 39, 41)
        for db in (1, 2)
    ]
    result = analyse(rows)
    assert 0.05 <= result.metrics["species_sd"] <= 0.2
    assert result.metrics["residual_sd"] < 0.03


def test_robust_mean_square_counts_a_consistent_bias_and_ignores_a_few_wild_values():
    assert robust_mean_square(np.full(9, 0.5)) == pytest.approx(0.25)
    values = np.array([0.01, -0.02, 0.0, 0.03, -0.01, 0.02, 5.0, -4.0])
    assert robust_mean_square(values) < 0.01


def test_between_group_variance_leaves_out_a_whole_misassigned_group():
    rng = np.random.default_rng(2)
    centres = np.concatenate([rng.normal(0, 0.2, 30), [2.5]])
    component, kept = calibrate_by_group("prefix", centres, np.full(31, 1e-4), "groups")
    assert not kept[-1] and kept[:-1].sum() >= 28
    assert component.sd == pytest.approx(0.2, rel=0.35)
    assert calibrate_by_group("prefix", centres[:3], np.zeros(3), "groups")[0] is None
