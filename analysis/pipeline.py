"""Run the rules in their required order (5, 1, 2–3, 4) and assemble the result."""

from __future__ import annotations

import datetime as dt
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.multitest import multipletests

from analysis import __version__
from analysis.design import DESIGN_COLUMNS, MIN_TERM_SUPPORT, TERM_LABELS, design_matrix
from analysis.errors import InvalidRowsError
from analysis.fragments import describe_loss, find_fragments
from analysis.isomers import assign_series, isomer_report
from analysis.model import (
    FittedModel,
    choose_series,
    fit_model,
    logp_line_metrics,
    lohgo_rmsep,
    loo_metrics,
    predict,
)
from analysis.names import COMPOSITION_UNITS
from analysis.oacetyl import check_oacetylation
from analysis.params import Parameters
from analysis.reader import DEFAULT_MAX_BYTES, read_table
from analysis.result import (
    METRIC_KEYS,
    RESULT_COLUMNS,
    STATUSES,
    AnalysisResult,
)
from analysis.validate import PeakTable, validate_table

ProgressCallback = Callable[[int, str, str], None]
STEP_PERCENT = {
    "loading": 5,
    "validating": 10,
    "fragments": 25,
    "model": 50,
    "outliers": 70,
    "checks": 80,
}
_NEXT_STEP = {
    "loading": "validating",
    "validating": "fragments",
    "fragments": "model",
    "model": "outliers",
    "outliers": "checks",
}


class Progress:
    """Report (percent, step, message) at each step and from inside the long ones."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.last: tuple[int, str] | None = None

    def step(self, step: str, message: str) -> None:
        self._emit(STEP_PERCENT[step], step, message)

    def within(self, step: str) -> Callable[[float, str], None]:
        start = STEP_PERCENT[step]
        end = STEP_PERCENT.get(_NEXT_STEP.get(step, ""), 90)

        def report(fraction: float, message: str) -> None:
            self._emit(
                start + int((end - start - 1) * min(max(fraction, 0.0), 1.0)),
                step,
                message,
            )

        return report

    def _emit(self, percent: int, step: str, message: str) -> None:
        if self.callback is None:
            return
        self.last = (percent, step)
        self.callback(percent, step, message)


def run_file(
    source: bytes | str | Path,
    *,
    filename: str | None = None,
    params: Parameters | None = None,
    progress: ProgressCallback | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> AnalysisResult:
    """Read, validate and analyse one table."""
    params = params or Parameters()
    reporter = Progress(progress)
    started = _now()
    reporter.step(
        "loading",
        f"reading {filename or Path(str(source)).name if not isinstance(source, bytes) else filename or 'upload'}",
    )
    raw = read_table(source, filename=filename, max_rows=params.max_rows, max_bytes=max_bytes)
    reporter.step("validating", f"checking {len(raw.records):,} rows")
    table = validate_table(raw, progress=reporter.within("validating"))
    return analyse(table, params, progress=progress, started=started, _reporter=reporter)


def load_table(
    source: bytes | str | Path,
    *,
    filename: str | None = None,
    params: Parameters | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> PeakTable:
    """Read and validate a table without analysing it (for previews and upload checks)."""
    params = params or Parameters()
    raw = read_table(source, filename=filename, max_rows=params.max_rows, max_bytes=max_bytes)
    return validate_table(raw)


def analyse(
    table: PeakTable,
    params: Parameters | None = None,
    *,
    progress: ProgressCallback | None = None,
    started: dt.datetime | None = None,
    _reporter: Progress | None = None,
) -> AnalysisResult:
    """Apply Rules 5, 1, 2–3 and 4 to a validated table."""
    params = params or Parameters()
    started = started or _now()
    clock = time.perf_counter()
    reporter = _reporter or Progress(progress)
    if table.issues and params.on_invalid_rows == "reject":
        raise InvalidRowsError(table.issues, table.n_rows)

    frame = table.frame.reset_index(drop=True)
    n = len(frame)
    valid = frame["valid"].to_numpy()
    rt = frame["rt"].to_numpy(dtype=float)
    row_numbers = frame["row"].to_numpy()

    reporter.step(
        "fragments",
        f"looking for in-source fragments among {int(valid.sum()):,} valid rows",
    )
    fragments = find_fragments(
        frame,
        valid,
        params.fragment_window,
        params.fragment_min_precursor_ratio,
        progress=reporter.within("fragments"),
    )
    members = valid & ~fragments.is_fragment
    series, series_index = assign_series(frame, members)

    reporter.step("model", "fitting the composition model on anchors")
    design = design_matrix(frame, series_index)
    anchor_positions = np.flatnonzero(members & frame["anchor"].to_numpy(dtype=bool))
    heads = frame["head"].to_numpy(dtype=object)
    model = fit_model(
        design,
        rt,
        anchor_positions,
        heads,
        row_numbers,
        params.alpha,
        params.min_anchors,
    )

    reporter.step("outliers", "predicting every row and testing its retention time")
    targets = np.flatnonzero(valid)
    if isinstance(model, FittedModel):
        in_fit = np.zeros(n, dtype=bool)
        in_fit[model.anchors] = True
        named_isomer = frame["isomer"].fillna("").to_numpy(dtype=object) != ""
        design = choose_series(model, design, rt, heads, valid & ~in_fit & ~named_isomer)
        predictions = predict(model, design, rt, heads, targets, params.pi_level)
        q_values = _benjamini_hochberg(predictions.p_value, members)
    else:
        predictions = None
        q_values = np.full(n, np.nan)

    reporter.step("checks", "checking isomer series and O-acetylation")
    series_effect = None
    if isinstance(model, FittedModel) and model.coefficient("series"):
        beta, se = model.coefficient("series")
        series_effect = (beta, se, model.sigma, model.df)
    isomer_pairs = isomer_report(frame, members, series, series_effect, params.pi_level)
    oacetylation, oac_flagged = check_oacetylation(frame, members, series, params.oac_tolerance)

    rows = _row_table(
        frame,
        table,
        params,
        fragments,
        model,
        predictions,
        q_values,
        series,
        oac_flagged,
        design,
        members,
    )
    models, metrics = _model_reports(model, frame, design, rt, anchor_positions, heads, rows, params)
    finished = _now()
    summary = _summary(rows, model, fragments, oacetylation, isomer_pairs, anchor_positions, frame)
    provenance = {
        "software": "ganglioside-rt-check",
        "version": __version__,
        "input": table.source_info(),
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "duration_seconds": round(time.perf_counter() - clock, 4),
        "python": platform.python_version(),
        "libraries": {
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scipy": scipy.__version__,
            "statsmodels": statsmodels.__version__,
        },
    }
    return AnalysisResult(
        rows=rows,
        models=models,
        metrics=metrics,
        fragments=fragments.pairs,
        oacetylation=oacetylation,
        isomer_pairs=isomer_pairs,
        issues=list(table.issues),
        summary=summary,
        parameters=params.to_dict(),
        provenance=provenance,
        extra_columns=list(table.extra_columns),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _benjamini_hochberg(p_values: np.ndarray, members: np.ndarray) -> np.ndarray:
    q = np.full(len(p_values), np.nan)
    tested = members & np.isfinite(p_values)
    if tested.any():
        q[tested] = multipletests(p_values[tested], method="fdr_bh")[1]
    return q


def _row_table(
    frame,
    table,
    params,
    fragments,
    model,
    predictions,
    q_values,
    series,
    oac_flagged,
    design,
    members,
) -> pd.DataFrame:
    n = len(frame)
    valid = frame["valid"].to_numpy()
    rt = frame["rt"].to_numpy(dtype=float)
    anchor = frame["anchor"].to_numpy(dtype=bool)
    # A bad Anchor cell is unknown, not False.
    anchor_bad = frame["row"].isin({issue.row for issue in table.issues if issue.column == "Anchor"}).to_numpy()
    anchor_out = pd.array(anchor, dtype="boolean")
    anchor_out[anchor_bad] = pd.NA

    nan = np.full(n, np.nan)
    if predictions is not None:
        pred, low, high = predictions.predicted, predictions.pi_low, predictions.pi_high
        stud, p = predictions.studentized, predictions.p_value
    else:
        pred = low = high = stud = p = nan
    residual = rt - pred
    outside = (rt < low) | (rt > high)
    is_outlier = members & (q_values <= params.alpha) & outside

    status = np.full(n, "valid", dtype=object)
    status[is_outlier] = "outlier"
    status[valid & ~members] = "fragment"
    unpredicted = members & ~np.isfinite(pred)
    status[unpredicted] = "unassessed"
    status[~valid] = "invalid"

    fitted = isinstance(model, FittedModel)
    extrapolation = _extrapolation_notes(frame, model, design, members) if fitted else np.full(n, "", dtype=object)
    downweighted = np.zeros(n, dtype=bool)
    if fitted:
        downweighted[model.excluded] = True
    flags = _flags(
        [
            (extrapolation != "", "extrapolated"),
            (fragments.review, "fragment_review"),
            (oac_flagged, "oac_inconsistent"),
            (downweighted, "downweighted_anchor"),
        ],
        n,
    )
    judged_alone = anchor & members & ~downweighted
    reasons = _reasons(
        frame,
        status,
        model,
        predictions,
        design,
        pred,
        low,
        high,
        residual,
        q_values,
        params,
        fragments,
        extrapolation,
        judged_alone,
    )
    fragment_of = pd.array(np.where(fragments.is_fragment, fragments.fragment_of, 0), dtype="Int64")
    fragment_of[~fragments.is_fragment] = pd.NA
    series_out = pd.array(np.where(members, series, 0), dtype="Int64")
    series_out[~members] = pd.NA
    text_columns = ("canonical_name", "head", "prefix", "isomer")
    columns = {
        "row": frame["row"].to_numpy(),
        "name": frame["name"].to_numpy(dtype=object),
        "rt": rt,
        "volume": frame["volume"].to_numpy(dtype=float),
        "log_p": frame["log_p"].to_numpy(dtype=float),
        "anchor": anchor_out,
        **{column: frame[column].to_numpy(dtype=object) for column in table.extra_columns},
        "status": status,
        "reason": reasons,
        "predicted_rt": np.round(pred, 4),
        "pi_low": np.round(low, 4),
        "pi_high": np.round(high, 4),
        "residual": np.round(residual, 4),
        "studentized_residual": np.round(stud, 3),
        "p_value": _round_significant(np.where(members, p, np.nan)),
        "q_value": _round_significant(q_values),
        "flags": flags,
        "fragment_of": fragment_of,
        "merged_volume": np.where(valid, fragments.merged_volume, np.nan),
        "isomer_group": np.where(valid, frame["canonical_name"].to_numpy(dtype=object), None),
        "series": series_out,
    }
    for column in RESULT_COLUMNS[RESULT_COLUMNS.index("canonical_name") :]:
        values = frame[column]
        columns[column] = values.to_numpy(dtype=object) if column in text_columns else values.astype("Int64").array
    return pd.DataFrame(columns)


def _round_significant(values: np.ndarray, digits: int = 4) -> np.ndarray:
    """Round to `digits` significant digits via decimal text, so 2.889e-29 prints as written."""
    out = np.full(len(values), np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    out[finite] = [float(f"{v:.{digits}g}") for v in values[finite]]
    return out


def _flags(masks: list[tuple[np.ndarray, str]], n: int) -> list[list[str]]:
    names = [name for _, name in masks]
    stacked = np.column_stack([mask for mask, _ in masks]) if masks else np.zeros((n, 0), dtype=bool)
    flags: list[list[str]] = [[] for _ in range(n)]
    for i in np.flatnonzero(stacked.any(axis=1)):
        flags[i] = [name for name, on in zip(names, stacked[i], strict=True) if on]
    return flags


def _extrapolation_notes(frame, model: FittedModel, design, members) -> np.ndarray:
    """Why each row lies outside the anchors' composition (empty string when it does not)."""
    n = len(frame)
    notes = np.full(n, "", dtype=object)
    anchors = model.anchor_design
    for j in model.choice.keep[1:]:
        low, high = anchors[:, j].min(), anchors[:, j].max()
        outside = members & ((design[:, j] < low) | (design[:, j] > high))
        label = TERM_LABELS[DESIGN_COLUMNS[j]]
        for i in np.flatnonzero(outside):
            value = design[i, j]
            notes[i] += f"; {label} {value:g} outside the anchors' {low:g}–{high:g}"
    anchor_heads = set(frame["head"].to_numpy(dtype=object)[model.anchors])
    heads = frame["head"].to_numpy(dtype=object)
    no_anchor = members & ~np.isin(heads, list(anchor_heads))
    for i in np.flatnonzero(no_anchor):
        notes[i] += f"; no anchor in head group {heads[i]}"
    return np.array([note[2:] for note in notes], dtype=object)


def _unestimable_reason(model: FittedModel, design: np.ndarray, i: int) -> str:
    parts = []
    for j, (value, set_aside) in model.thin.items():
        if design[i, j] != value:
            label = TERM_LABELS[DESIGN_COLUMNS[j]]
            parts.append(
                f"{label} = {design[i, j]:g} but only {len(set_aside)} anchor departs from "
                f"{label} = {value:g} (at least {MIN_TERM_SUPPORT} are needed)"
            )
    for j, value in model.choice.constant.items():
        if j in model.thin:
            continue
        if design[i, j] != value:
            label = TERM_LABELS[DESIGN_COLUMNS[j]]
            parts.append(f"{label} = {design[i, j]:g} but every anchor has {value:g}")
    if not parts:
        labels = ", ".join(TERM_LABELS[DESIGN_COLUMNS[j]] for j in model.choice.confounded)
        parts.append(f"the anchors cannot separate the effects of {labels}")
    return "no prediction: " + "; ".join(parts) + ", so its effect on RT cannot be estimated"


def _reasons(
    frame,
    status,
    model,
    predictions,
    design,
    pred,
    low,
    high,
    residual,
    q,
    params,
    fragments,
    extrapolation,
    judged_alone,
) -> list[str]:
    rows = frame["row"].to_numpy()
    names = frame["name"].to_numpy(dtype=object)
    rt = frame["rt"].to_numpy(dtype=float)
    invalid_reason = frame["invalid_reason"].to_numpy(dtype=object)
    comp = frame[list(COMPOSITION_UNITS)].to_numpy()
    level = f"{params.pi_level * 100:g}%"
    position_of_row = {int(r): i for i, r in enumerate(rows)}
    reasons = []
    for i, s in enumerate(status):
        if s == "invalid":
            text = invalid_reason[i]
        elif s == "fragment":
            j = position_of_row[int(fragments.fragment_of[i])]
            lost = dict(zip(COMPOSITION_UNITS, (comp[j] - comp[i]).tolist(), strict=True))
            text = (
                f"in-source fragment of row {rows[j]} {names[j]} at {rt[j]:.3f} min "
                f"(ΔRT {rt[i] - rt[j]:+.3f} min, lost {describe_loss(lost)}); "
                f"its volume is added to row {rows[j]}"
            )
        elif s == "unassessed":
            if not isinstance(model, FittedModel):
                text = f"no RT model: {model.reason}"
            elif predictions.sole_support[i]:
                text = "this anchor alone determines a model term, so it cannot be checked against the others"
            else:
                text = _unestimable_reason(model, design, i)
        else:
            judged = " (anchor, judged by the model fitted without it)" if judged_alone[i] else ""
            interval = f"{level} PI {low[i]:.2f}–{high[i]:.2f}"
            if s == "outlier":
                direction = "later" if residual[i] > 0 else "earlier"
                text = (
                    f"RT {rt[i]:.3f} min is {abs(residual[i]):.2f} min {direction} than predicted "
                    f"{pred[i]:.2f}{judged}: outside the {interval} (q = {q[i]:.2g})"
                )
            elif rt[i] < low[i] or rt[i] > high[i]:
                text = (
                    f"RT {rt[i]:.3f} min is outside the {interval} around predicted {pred[i]:.2f}{judged}, "
                    f"but not significant after false-discovery control (q = {q[i]:.2g})"
                )
            else:
                text = f"RT {rt[i]:.3f} min is within the {interval} around predicted {pred[i]:.2f}{judged}"
            if extrapolation[i]:
                text += f"; extrapolated: {extrapolation[i]}"
        reasons.append(text)
    return reasons


def _model_reports(model, frame, design, rt, anchor_positions, heads, rows, params):
    members_with_pi = rows["status"].isin(["valid", "outlier", "unassessed"])
    coverage = float(rows.loc[members_with_pi, "pi_low"].notna().mean()) if members_with_pi.any() else float("nan")
    if not isinstance(model, FittedModel):
        report = {
            "name": "composition",
            "role": "used for calls",
            "status": "not fitted",
            "reason": model.reason,
            "n_anchors": len(anchor_positions),
        }
        metrics = dict.fromkeys(METRIC_KEYS)
        metrics.update(n_anchors_used=0, coverage=coverage)
        return [report], metrics
    fit = model.fit
    terms = model.terms
    half = stats.t.ppf(0.975, fit.df) * fit.standard_errors()
    coefficients = [
        {
            "term": term,
            "label": TERM_LABELS[term],
            "estimate": float(b),
            "std_error": float(se),
            "ci95_low": float(b - w),
            "ci95_high": float(b + w),
        }
        for term, b, se, w in zip(terms, fit.beta, fit.standard_errors(), half, strict=False)
    ]
    anchor_heads = heads[model.anchors]
    group_se = fit.standard_errors()[fit.n_fixed :]
    head_offsets = [
        {
            "head": head,
            "offset": float(u),
            "std_error": float(se),
            "n_anchors": int((anchor_heads == head).sum()),
        }
        for head, u, se in zip(fit.groups, fit.group_effects, group_se, strict=True)
    ]
    dropped = [
        {
            "term": DESIGN_COLUMNS[j],
            "reason": f"every anchor has {TERM_LABELS[DESIGN_COLUMNS[j]]} = {v:g}",
        }
        for j, v in model.choice.constant.items()
    ]
    dropped += [
        {
            "term": DESIGN_COLUMNS[j],
            "reason": "confounded with other terms among the anchors",
        }
        for j in model.choice.confounded
    ]
    names = frame["name"].to_numpy(dtype=object)
    row_numbers = frame["row"].to_numpy()
    loo = loo_metrics(model, rt, (rows["rt"] - rows["predicted_rt"]).to_numpy()[model.excluded])
    lohgo = lohgo_rmsep(design, rt, model.anchors, heads)
    ranges = {
        DESIGN_COLUMNS[j]: [
            float(model.anchor_design[:, j].min()),
            float(model.anchor_design[:, j].max()),
        ]
        for j in model.choice.keep[1:]
    }
    report = {
        "name": "composition",
        "role": "used for calls",
        "status": "fitted",
        "formula": "RT ~ "
        + " + ".join("1" if t == "intercept" else t for t in terms)
        + (" + (1 | head group)" if fit.groups else ""),
        "coefficients": coefficients,
        "head_group_sd": float(np.sqrt(fit.tau2)),
        "head_group_offsets": head_offsets,
        "dropped_terms": dropped,
        "n_anchors": len(anchor_positions),
        "n_anchors_used": len(model.anchors),
        "n_downweighted": len(model.excluded),
        "downweighted_anchors": [
            {"row": int(row_numbers[i]), "name": names[i], "rt": float(rt[i])} for i in model.excluded
        ],
        "screening": (
            "anchors whose externally studentised residual is significant after Bonferroni "
            f"correction at alpha = {params.alpha:g} are left out, one round at a time"
        ),
        "residual_sd": model.sigma,
        "df_resid": round(model.df, 2),
        **loo,
        **lohgo,
        "anchor_ranges": ranges,
    }
    baseline = logp_line_metrics(frame["log_p"].to_numpy(dtype=float), rt, model.anchors)
    metrics = {
        "loo_rmsep": loo["loo_rmsep"],
        "loo_rmsep_all_anchors": loo["loo_rmsep_all_anchors"],
        "loo_q2": loo["loo_q2"],
        "lohgo_rmsep": lohgo["lohgo_rmsep"],
        "n_anchors_used": len(model.anchors),
        "coverage": coverage,
        "residual_sd": model.sigma,
        "head_group_sd": float(np.sqrt(fit.tau2)),
        "df_resid": round(model.df, 2),
        "log_p_line_loo_rmsep": baseline["loo_rmsep"],
    }
    return [report, baseline], metrics


def _summary(rows, model, fragments, oacetylation, isomer_pairs, anchor_positions, frame):
    counts = rows["status"].value_counts()
    flags = rows["flags"]
    shifts = oacetylation["shift"].dropna()
    valid_anchor = frame["valid"] & frame["anchor"]
    return {
        "n_rows": len(rows),
        "counts": {status: int(counts.get(status, 0)) for status in STATUSES},
        "n_anchors": int(valid_anchor.sum()),
        "n_anchors_usable": len(anchor_positions),
        "n_anchors_used": len(model.anchors) if isinstance(model, FittedModel) else 0,
        "model": "fitted" if isinstance(model, FittedModel) else f"not fitted: {model.reason}",
        "n_prefixes": int(rows["prefix"].nunique()),
        "n_extrapolated": int(flags.map(lambda f: "extrapolated" in f).sum()),
        "n_fragment_review": int(fragments.review.sum()),
        "oac_pairs": int(shifts.size),
        "oac_inconsistent": int(oacetylation["verdict"].str.startswith("inconsistent").sum()),
        "oac_median_shift": float(shifts.median()) if shifts.size else None,
        "isomer_pairs": len(isomer_pairs),
        "isomer_pairs_disagreeing": int((isomer_pairs["agrees"] == False).sum()),  # noqa: E712
    }
