"""The model report, the run's metrics and its summary: the figures a chemist checks the calls by."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.calls import is_in
from analysis.crossval import HeldOut, rmsep
from analysis.design import SOFT_TERMS, column_label
from analysis.model import FittedModel, loo_errors, predict_at, predictable, t_quantile
from analysis.result import METRIC_KEYS, STATUSES
from analysis.stage import Stage

_FACTOR_NOUN = {"head": ("head group", "head groups"), "prefix": ("prefix", "prefixes")}


def model_reports(stage: Stage, rows: pd.DataFrame) -> tuple[list[dict], dict]:
    """The model's report (coefficients, variance components, cross-validated figures) and the metrics."""
    model, calls, frame, params = stage.model, stage.calls, stage.frame, stage.params
    lopo, lohgo, prefix_keys, fragments, anchor = (
        stage.lopo,
        stage.lohgo,
        stage.prefix_keys,
        stage.fragments,
        stage.anchor,
    )
    rt = frame["rt"].to_numpy(dtype=float)
    judged = rows["status"].isin(["valid", "outlier", "unassessed"])
    fraction_with_pi = float(rows.loc[judged, "pi_low"].notna().mean()) if judged.any() else float("nan")
    log_p = frame["log_p"].to_numpy(dtype=float)
    if not isinstance(model, FittedModel):
        report = {
            "name": "composition",
            "role": "used for calls",
            "status": "not fitted",
            "reason": model.reason,
            "n_anchors": int((anchor & ~fragments.is_fragment).sum()),
        }
        metrics = dict.fromkeys(METRIC_KEYS)
        metrics.update(n_anchors_used=0, lopo_n_scored=0, lohgo_n_scored=0, fraction_with_pi=fraction_with_pi)
        return [report], metrics

    fit = model.fit
    terms = model.terms
    se = fit.standard_errors()
    half = t_quantile(0.975, fit.df) * se
    coefficients = [
        {
            "term": term,
            "label": column_label(term),
            "estimate": float(b),
            "std_error": float(s),
            "ci95_low": float(b - w),
            "ci95_high": float(b + w),
        }
        for term, b, s, w in zip(terms, fit.beta, se, half, strict=False)
    ]
    heads = frame["head"].fillna("").to_numpy(dtype=object)
    level_of = {"head": heads[model.anchors], "prefix": prefix_keys[model.anchors]}
    offsets = {
        factor.name: [
            {
                factor.name: level,
                "offset": float(fit.theta[factor.start + i]),
                "std_error": float(se[factor.start + i]),
                "n_anchors": int((level_of[factor.name] == level).sum()),
            }
            for i, level in enumerate(factor.levels)
        ]
        for factor in fit.factors
    }
    head_offsets = offsets.get("head", [])
    dropped = [
        {
            "term": model.columns[j],
            "reason": (
                "no anchor shows it; rows that need it are predicted without it and widened as extrapolations"
                if model.columns[j] in SOFT_TERMS
                else f"every anchor has {column_label(model.columns[j])} = {v:g}"
            ),
        }
        for j, v in model.choice.constant.items()
    ]
    dropped += [
        {"term": model.columns[j], "reason": "confounded with other terms among the anchors"}
        for j in model.choice.confounded
    ]
    dropped += [
        {
            "term": model.columns[j],
            "reason": (
                f"only {len(aside)} anchor departs from {column_label(model.columns[j])} = {v:g}"
                if len(aside)
                else "too few anchors show it; rows that need it are extrapolations"
            ),
        }
        for j, (v, aside) in model.thin.items()
    ]
    names = frame["name"].to_numpy(dtype=object)
    row_numbers = frame["row"].to_numpy()

    # Leave-one-out over the fit's anchors, and over every MS/MS-confirmed anchor (the sceptic's figure).
    errors = loo_errors(model)
    y = rt[model.anchors][fit.leverage < 1 - 1e-8]
    press = float(np.sum(errors**2))
    total = float(np.sum((y - y.mean()) ** 2))
    loo_inside = _inside(rows, calls.loo_judged)
    all_errors, n_unscored = _all_anchor_errors(stage, rt)
    lopo_rmsep, lopo_n = rmsep(lopo, rt)
    lohgo_rmsep, lohgo_n = rmsep(lohgo, rt)
    species_var = stage.component("species")
    prefix_var = stage.component("prefix")
    lopo_cover = _held_out_coverage(lopo, stage, rt)
    lohgo_cover = _held_out_coverage(lohgo, stage, rt)
    coverage = _main_peak_coverage(rows, stage)
    ranges = {
        model.columns[j]: [float(model.anchor_design[:, j].min()), float(model.anchor_design[:, j].max())]
        for j in model.choice.keep[1:]
    }
    components = [
        {
            "component": "residual",
            "variance": fit.sigma2,
            "sd": model.sigma,
            "n": fit.n,
            "method": "REML residual variance of the anchors",
            "calibrated": True,
        },
        *[
            {
                "component": f"{_FACTOR_NOUN[factor.name][0]}, REML on the anchors",
                "variance": factor.tau2,
                "sd": float(np.sqrt(factor.tau2)),
                "n": len(factor.levels),
                "method": f"REML variance over the {len(factor.levels)} {_FACTOR_NOUN[factor.name][1]} with anchors "
                "(the anchors' own view; what a row without such an anchor gets is calibrated below)",
                "calibrated": True,
            }
            for factor in fit.factors
        ],
        *[c.report() for c in calls.components],
        {
            "component": "isomer offset between head groups",
            "variance": model.series.between_sd**2,
            "sd": model.series.between_sd,
            "n": len(model.series.learned),
            "method": model.series.between_method,
            "calibrated": len(model.series.learned) >= 2,
        },
    ]
    ambiguity = [
        {
            "prefix": reading.prefix,
            "head": reading.head,
            "n_anchors": reading.n_anchors,
            "isomer_offset": reading.offset,
            "effects": [{"term": t, "as_a": a, "as_b": b} for t, a, b in reading.effects],
            "rows_affected": int((reading.shift != 0).sum()),
        }
        for reading in calls.ambiguous
    ]
    report = {
        "name": "composition",
        "role": "used for calls",
        "status": "fitted",
        "formula": "RT ~ "
        + " + ".join("1" if t == "intercept" else t for t in terms)
        + "".join(f" + (1 | {'head group' if f.name == 'head' else 'prefix'})" for f in fit.factors),
        "coefficients": coefficients,
        "variance_components": components,
        "series_ambiguity": ambiguity,
        "isomer_offsets": [
            {"head": h, "offset": b, "std_error": s, "source": "learned from its anchors"}
            for h, (b, s) in model.series.learned.items()
        ],
        "head_group_sd": float(np.sqrt(fit.tau2)),
        "head_group_offsets": head_offsets,
        "prefix_offsets": offsets.get("prefix", []),
        "dropped_terms": dropped,
        "n_anchors": int((anchor & ~fragments.is_fragment).sum()),
        "n_anchors_used": len(model.anchors),
        "n_excluded": len(model.excluded),
        "excluded_anchors": [
            {"row": int(row_numbers[i]), "name": names[i], "rt": float(rt[i]), "t_external": float(t)}
            for i, t in zip(model.excluded, model.screening_t, strict=True)
        ],
        "screening": (
            "anchors whose externally studentised residual is significant after Bonferroni "
            f"correction at alpha = {params.alpha:g} are left out, one round at a time"
        ),
        "residual_sd": model.sigma,
        "df_resid": round(model.df, 2),
        "loo_rmsep": float(np.sqrt(press / len(y))) if len(y) else float("nan"),
        "loo_q2": 1 - press / total if total > 0 else float("nan"),
        "loo_coverage": loo_inside,
        "n_loo": len(y),
        "loo_rmsep_all_anchors": float(np.sqrt(np.mean(all_errors**2))) if len(all_errors) else float("nan"),
        "n_all_anchors_scored": len(all_errors),
        "n_all_anchors_unscored": n_unscored,
        "lopo_rmsep": lopo_rmsep,
        "lopo_coverage": lopo_cover,
        "lopo_n_scored": lopo_n,
        "lopo_groups_scored": [h.group for h in lopo if len(h.positions)],
        "lopo_groups_unscorable": [h.group for h in lopo if not len(h.positions)],
        "lopo_unscored": _unscored(lopo),
        "lohgo_rmsep": lohgo_rmsep,
        "lohgo_coverage": lohgo_cover,
        "lohgo_n_scored": lohgo_n,
        "lohgo_groups_scored": [h.group for h in lohgo if len(h.positions)],
        "lohgo_groups_unscorable": [h.group for h in lohgo if not len(h.positions)],
        "lohgo_unscored": _unscored(lohgo),
        "anchor_ranges": ranges,
        "main_peak_coverage": coverage,
    }
    baseline = _logp_line(log_p, rt, model.anchors)
    metrics = {
        "loo_rmsep": report["loo_rmsep"],
        "loo_rmsep_all_anchors": report["loo_rmsep_all_anchors"],
        "lopo_rmsep": lopo_rmsep,
        "lopo_coverage": lopo_cover,
        "lopo_n_scored": lopo_n,
        "lohgo_rmsep": lohgo_rmsep,
        "lohgo_coverage": lohgo_cover,
        "lohgo_n_scored": lohgo_n,
        "loo_q2": report["loo_q2"],
        "n_anchors_used": len(model.anchors),
        "fraction_with_pi": fraction_with_pi,
        "pi_coverage_main_peaks": coverage["all"]["coverage"],
        "n_main_peaks_scored": coverage["all"]["n"],
        "residual_sd": model.sigma,
        "head_group_sd": float(np.sqrt(stage.component("head group"))),
        "prefix_sd": float(np.sqrt(prefix_var)),
        "species_sd": float(np.sqrt(species_var)),
        "df_resid": round(model.df, 2),
        "log_p_line_loo_rmsep": baseline["loo_rmsep"],
    }
    return [report, baseline], metrics


def _inside(rows: pd.DataFrame, mask: np.ndarray) -> float:
    sub = rows[mask & rows["pi_low"].notna().to_numpy()]
    if sub.empty:
        return float("nan")
    return float(((sub["rt"] >= sub["pi_low"]) & (sub["rt"] <= sub["pi_high"])).mean())


def _all_anchor_errors(stage: Stage, rt: np.ndarray) -> tuple[np.ndarray, int]:
    """Every MS/MS-confirmed anchor scored by a fit that did not contain it.

    Anchors of the fit by their leave-one-out error; anchors screened out, set aside or taken as
    in-source fragments by their error against the final fit, which never saw them.
    """
    model, calls, design, anchor, frame, index = (
        stage.model,
        stage.calls,
        stage.design,
        stage.anchor,
        stage.frame,
        stage.anchor_index,
    )
    errors = [loo_errors(model)]
    others = np.flatnonzero(anchor & ~calls.in_fit)
    labels = np.column_stack([frame["head"].fillna("").to_numpy(dtype=object), stage.prefix_keys])
    ok = predictable(model, design[others])
    scored = others[ok]
    prediction = predict_at(model, design[scored], labels[scored], index[scored])
    errors.append(rt[scored] - prediction.predicted)
    return np.concatenate(errors), int((~ok).sum())


def _held_out_coverage(held: list[HeldOut], stage: Stage, rt: np.ndarray) -> float:
    """Share of held-out anchors inside the interval a row in their situation gets."""
    species_var, prefix_var = stage.component("species"), stage.component("prefix")
    prefix_keys, heads = stage.prefix_keys, stage.frame["head"].fillna("").to_numpy(dtype=object)
    inside, total = 0, 0
    quantile = t_quantile(0.5 + stage.params.pi_level / 2, stage.model.df)
    for h in held:
        if not len(h.positions):
            continue
        needs_prefix = (~h.head_lost) | (prefix_keys[h.positions] != heads[h.positions])
        variance = h.fit_variance + h.head_variance + species_var + np.where(needs_prefix, prefix_var, 0.0)
        inside += int(np.sum(np.abs(rt[h.positions] - h.predicted) <= quantile * np.sqrt(variance)))
        total += len(h.positions)
    return inside / total if total else float("nan")


def _main_peak_coverage(rows: pd.DataFrame, stage: Stage) -> dict:
    """Main peaks of names without an anchor inside their own interval, overall and by situation."""
    calls, frame = stage.calls, stage.frame
    names = frame["canonical_name"].fillna("").to_numpy(dtype=object)
    anchor = stage.anchor
    n = len(frame)
    member = rows["status"].isin(["valid", "outlier"]).to_numpy()
    is_main = calls.main == np.arange(n)
    scored = is_main & member & ~is_in(names, names[anchor & (rows["status"] != "fragment").to_numpy()])
    prefix_count = rows["prefix"].map(rows.loc[calls.in_fit, "prefix"].value_counts()).fillna(0).to_numpy()
    extrapolated = np.array(["extrapolated" in f for f in rows["flags"]], dtype=bool)
    out_of_range = np.zeros(n, dtype=bool)
    for d in calls.extrapolation.values():
        out_of_range |= d > 0
    inside = ((rows["rt"] >= rows["pi_low"]) & (rows["rt"] <= rows["pi_high"])).to_numpy()
    categories = {
        "all": scored,
        "prefix with 3 or more anchors": scored & (prefix_count >= 3) & ~out_of_range,
        "prefix with 1–2 anchors": scored & (prefix_count >= 1) & (prefix_count < 3) & ~out_of_range,
        "prefix without anchors": scored & (prefix_count == 0) & ~out_of_range,
        "outside the anchors' range": scored & out_of_range,
        "flagged extrapolated": scored & extrapolated,
    }
    return {
        label: {"n": int(mask.sum()), "coverage": float(inside[mask].mean()) if mask.any() else None}
        for label, mask in categories.items()
    }


def _logp_line(log_p: np.ndarray, rt: np.ndarray, anchors: np.ndarray) -> dict[str, object]:
    """The legacy baseline, one straight line of RT on Log P over the same anchors (closed form)."""
    report = {
        "name": "log_p_line",
        "role": "baseline for comparison only; not used for any call",
        "formula": "RT ~ 1 + log_p",
        "n_anchors_used": len(anchors),
    }
    values = log_p[anchors]
    if len(anchors) < 3 or not np.isfinite(values).all() or np.ptp(values) == 0:
        return {
            **report,
            "status": "not fitted",
            "reason": "Log P is missing or does not vary among the anchors",
            "loo_rmsep": float("nan"),
            "loo_q2": float("nan"),
        }
    x = np.column_stack([np.ones(len(anchors)), values])
    y = rt[anchors]
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    xtx_inv = np.linalg.inv(x.T @ x)
    h = np.sum((x @ xtx_inv) * x, axis=1)
    scale = float(resid @ resid / (len(y) - 2))
    loo = resid / (1 - h)
    return {
        **report,
        "status": "fitted",
        "coefficients": [
            {"term": term, "label": term, "estimate": float(b), "std_error": float(s)}
            for term, b, s in zip(("intercept", "log_p"), beta, np.sqrt(scale * np.diag(xtx_inv)), strict=True)
        ],
        "residual_sd": float(np.sqrt(scale)),
        "df_resid": len(y) - 2,
        "loo_rmsep": float(np.sqrt(np.mean(loo**2))),
        "loo_q2": float(1 - np.sum(loo**2) / np.sum((y - y.mean()) ** 2)),
    }


def summary(
    stage: Stage, rows: pd.DataFrame, masks: dict, oacetylation: pd.DataFrame, isomer_pairs: pd.DataFrame
) -> dict:
    """Counts by status and kind of call, and what each rule found."""
    model, logp = stage.model, stage.logp
    counts = rows["status"].value_counts()
    shifts = oacetylation["shift"].dropna()
    valid_anchor = stage.anchor
    anchor_positions = np.flatnonzero(stage.members & stage.anchor)
    outlier = (rows["status"] == "outlier").to_numpy()
    extra = masks["extra_peak"]
    anchor = stage.anchor
    log_p_given = bool(np.isfinite(rows["log_p"].to_numpy(dtype=float)).any())
    return {
        "n_rows": len(rows),
        "n_rows_skipped": len(stage.table.skipped),  # set aside by the reader (unannotated, other classes)
        "log_p_given": log_p_given,
        "counts": {status: int(counts.get(status, 0)) for status in STATUSES},
        "identity_outliers": int((outlier & ~extra & ~anchor).sum()),
        "extra_peak_outliers": int((outlier & extra & ~anchor).sum()),
        "anchors_inconsistent": int(masks["anchor_inconsistent"].sum()),
        "n_names": int(rows.loc[rows["status"] != "invalid", "canonical_name"].nunique()),
        "n_extra_peaks": int(extra.sum()),
        "n_anchors": int(valid_anchor.sum()),
        "n_anchors_usable": len(anchor_positions),
        "n_anchors_used": len(model.anchors) if isinstance(model, FittedModel) else 0,
        "n_anchors_as_fragments": int(masks["anchor_as_fragment"].sum()),
        "model": "fitted" if isinstance(model, FittedModel) else f"not fitted: {model.reason}",
        "n_prefixes": int(rows["prefix"].nunique()),
        "n_extrapolated": int(masks["extrapolated"].sum()),
        "n_fragment_review": int(masks["fragment_review"].sum()),
        "n_logp_inconsistent": int(logp.flagged.sum()),
        "logp_check": logp.status if log_p_given else "not checked: the table has no Log P",
        "oac_pairs": int(shifts.size),
        "oac_inconsistent": int(oacetylation["verdict"].str.startswith("inconsistent").sum()),
        "oac_no_base": int((oacetylation["verdict"] == "no base peak").sum()),
        "oac_median_shift": float(shifts.median()) if shifts.size else None,
        "isomer_pairs": len(isomer_pairs),
        "isomer_pairs_disagreeing": int((isomer_pairs["agrees"] == False).sum()),  # noqa: E712
        "isomer_pairs_without_learned_offset": int(isomer_pairs["agrees"].isna().sum()),
    }


def _unscored(held: list) -> list[dict]:
    """Groups with anchors a fold could not predict (they need a coefficient only the group carries)."""
    return [
        {"group": h.group, "n_unscored": h.n_unscorable, "n_anchors": h.n_unscorable + len(h.positions)}
        for h in held
        if h.n_unscorable
    ]
