"""The per-row result table: every input column, the verdict, the numbers behind it, and the flags."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.calls import VARIANCE_COLUMNS
from analysis.design import column_label
from analysis.reasons import P_FLOOR, row_reasons
from analysis.result import RESULT_COLUMNS
from analysis.stage import Stage
from analysis.variance import anchor_ranges

TEXT_COLUMNS = ("canonical_name", "head", "prefix", "isomer")


def build_rows(stage: Stage) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The row table and, per flag, which rows carry it."""
    frame, calls, n = stage.frame, stage.calls, stage.n
    valid = frame["valid"].to_numpy()
    rt = frame["rt"].to_numpy(dtype=float)
    volume = frame["volume"].to_numpy(dtype=float)
    rows = frame["row"].to_numpy()
    names = frame["canonical_name"].fillna("").to_numpy(dtype=object)
    members, anchor, fragments, main = stage.members, stage.anchor, stage.fragments, stage.main
    nan = np.full(n, np.nan)

    # A bad Anchor cell is unknown, not False.
    anchor_bad = frame["row"].isin({issue.row for issue in stage.table.issues if issue.column == "Anchor"}).to_numpy()
    anchor_out = pd.array(frame["anchor"].to_numpy(dtype=bool), dtype="boolean")
    anchor_out[anchor_bad] = pd.NA

    if calls is not None:
        predicted, low, high = calls.predicted, calls.pi_low, calls.pi_high
        studentized, p, q = calls.studentized, calls.p_value, calls.q_value
    else:
        predicted = low = high = studentized = p = q = nan
    residual = rt - predicted

    status = np.full(n, "valid", dtype=object)
    if calls is not None:
        status[calls.outlier] = "outlier"
        status[members & ~np.isfinite(predicted)] = "unassessed"
    else:
        status[members] = "unassessed"
    status[valid & fragments.is_fragment] = "fragment"
    status[~valid] = "invalid"
    outlier = status == "outlier"
    extra = stage.extra
    main_outlier = np.zeros(n, dtype=bool)
    main_outlier[extra] = outlier[main[extra]]

    excluded = np.zeros(n, dtype=bool)
    range_notes = np.full(n, "", dtype=object)
    unanchored = np.zeros(n, dtype=bool)
    ambiguous_rows = np.zeros(n, dtype=bool)
    if calls is not None:
        excluded[stage.model.excluded] = True
        range_notes = _range_notes(stage)
        unanchored = members & np.isfinite(predicted) & ~calls.in_fit & (~calls.prefix_anchored | ~calls.head_anchored)
        for reading in calls.ambiguous:
            ambiguous_rows |= reading.shift != 0
    oac_flagged = frame["row"].isin(list(stage.oac_notes)).to_numpy()
    masks = {
        "extrapolated": (range_notes != "") | unanchored,
        "fragment_review": valid & fragments.review,
        "oac_inconsistent": oac_flagged,
        "extra_peak": extra,
        "main_peak_outlier": main_outlier,
        "anchor_as_fragment": valid & anchor & fragments.is_fragment,
        "anchor_inconsistent": anchor & members & outlier,
        "excluded_anchor": excluded,
        "series_ambiguous": ambiguous_rows & members,
        "logp_inconsistent": stage.logp.flagged,
    }
    reasons = row_reasons(stage, status, range_notes, excluded)

    fragment_of = pd.array(np.where(fragments.is_fragment, fragments.fragment_of, 0), dtype="Int64")
    fragment_of[~fragments.is_fragment] = pd.NA
    series_out = pd.array(np.where(members, stage.series, 0), dtype="Int64")
    series_out[~members] = pd.NA
    has_main = main >= 0
    safe_main = np.maximum(main, 0)
    main_row = pd.array(np.where(has_main, rows[safe_main], 0), dtype="Int64")
    main_row[~has_main] = pd.NA
    offset = np.where(extra, rt - rt[safe_main], np.nan)
    fraction = np.where(has_main, volume / volume[safe_main], np.nan)
    judged_series = pd.array(np.zeros(n, dtype=np.int64), dtype="Int64")
    if calls is not None:
        judged = (calls.position > -99) & np.isfinite(predicted)
        judged_series = pd.array(np.where(judged, calls.position + 1, 0), dtype="Int64")
        judged_series[~judged] = pd.NA
    else:
        judged_series[:] = pd.NA

    columns = {
        "row": rows,
        "name": frame["name"].to_numpy(dtype=object),
        "rt": rt,
        "volume": volume,
        "log_p": frame["log_p"].to_numpy(dtype=float),
        "anchor": anchor_out,
        **{column: frame[column].to_numpy(dtype=object) for column in stage.table.extra_columns},
        "status": status,
        "reason": reasons,
        "predicted_rt": _round(predicted, 4),
        "pi_low": _round(low, 4),
        "pi_high": _round(high, 4),
        "residual": _round(residual, 4),
        "studentized_residual": _round(studentized, 3),
        "p_value": floor_p(round_significant(np.where(members, p, np.nan))),
        "q_value": floor_p(round_significant(q)),
        "flags": flag_lists(masks, n),
        "fragment_of": fragment_of,
        "merged_volume": np.where(valid, fragments.merged_volume, np.nan),
        "isomer_group": np.where(valid, names, None),
        "series": series_out,
        "main_peak_row": main_row,
        "offset_from_main": _round(offset, 4),
        "volume_fraction": _round(fraction, 6),
        "judged_series": judged_series,
    }
    for column in VARIANCE_COLUMNS:
        values = calls.variances[column] if calls is not None else nan
        columns[column] = _round(np.where(np.isfinite(predicted), values, np.nan), 6)
    for column in RESULT_COLUMNS[RESULT_COLUMNS.index("canonical_name") :]:
        values = frame[column]
        columns[column] = values.to_numpy(dtype=object) if column in TEXT_COLUMNS else values.astype("Int64").array
    return pd.DataFrame(columns), masks


def _round(values: np.ndarray, digits: int) -> np.ndarray:
    """Rounded, with −0.0 made 0.0 (a database or a spreadsheet would not keep the sign)."""
    return np.round(values, digits) + 0.0


def floor_p(values: np.ndarray) -> np.ndarray:
    """p and q values below P_FLOOR are reported as P_FLOOR (read "< 1e-6")."""
    return np.where(np.isfinite(values), np.maximum(values, P_FLOOR), np.nan)


def round_significant(values: np.ndarray, digits: int = 4) -> np.ndarray:
    """Round to `digits` significant digits via decimal text, so 2.889e-5 prints as written."""
    out = np.full(len(values), np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite):
        unique, inverse = np.unique(values[finite], return_inverse=True)
        out[finite] = np.array([float(f"{v:.{digits}g}") for v in unique.tolist()])[inverse]
    return out


def flag_lists(masks: dict[str, np.ndarray], n: int) -> list[list[str]]:
    """One list of flag names per row, built once per distinct combination (rows share it: do not mutate)."""
    names = list(masks)
    if not names:
        return [[] for _ in range(n)]
    code = np.zeros(n, dtype=np.int64)
    for bit, name in enumerate(names):
        code |= masks[name].astype(np.int64) << bit
    lists = {int(c): [name for bit, name in enumerate(names) if c >> bit & 1] for c in np.unique(code)}
    return [lists[c] for c in code.tolist()]


def _range_notes(stage: Stage) -> np.ndarray:
    """Why each row lies outside the anchors' composition (empty string when it does not)."""
    calls, model, design = stage.calls, stage.model, stage.design
    n = stage.n
    notes = np.full(n, "", dtype=object)
    ranges = anchor_ranges(model)
    judged = np.isfinite(calls.predicted) & ~calls.in_fit
    for side, distance in calls.extrapolation.items():
        low, high = ranges[side.term]
        label = column_label(side.term)
        value = design[:, model.columns.index(side.term)]
        assumed = " (width assumed, too few peaks to calibrate it)" if side in calls.uncalibrated_sides else ""
        for i in np.flatnonzero(judged & (distance > 0)).tolist():
            text = f"{label} {value[i]:g} outside the anchors' {low:g}–{high:g}{assumed}"
            notes[i] = f"{notes[i]}; {text}" if notes[i] else text
    return notes
