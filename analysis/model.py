"""Rule 1: the pooled composition model of retention time, fitted on anchors.

RT is linear in the ceramide (carbons with a curvature term, double bonds, oxygens), the
glycan (sialic acids, neutral core sugars, each modification) and the isomer series index,
plus a random intercept per head group (analysis.mixed). The head-group intercept lets a
group with anchors keep its own offset while a group without anchors is predicted from the
composition alone, with the between-group spread added to its interval. The choice of
terms is justified by cross-validated error on the porcine brain sample
(benchmarks/model_choice.py).

Terms the anchors cannot estimate are left out, and rows that need them are not predicted.
Anchors whose externally studentised residual is significant after Bonferroni correction
are left out of the fit (reported as down-weighted), so a wrong anchor cannot drag the fit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import statsmodels.api as sm
from scipy import stats

from analysis.design import (
    DESIGN_COLUMNS,
    ColumnChoice,
    choose_columns,
    estimable,
    set_aside_thin_terms,
)
from analysis.mixed import PenalisedFit, deletion_diagnostics, fit_random_intercept

_MAX_SCREENING_ROUNDS = 50
MAX_CHARITABLE_SERIES = 1  # series index 0 and 1: the a and b isomers
_TESTABLE = 1 - 1e-8  # leverage below which an anchor can be judged without itself


@dataclasses.dataclass
class FittedModel:
    choice: ColumnChoice
    fit: PenalisedFit
    anchors: np.ndarray  # frame positions of the anchors in the final fit
    excluded: np.ndarray  # frame positions of anchors screened out, in exclusion order
    anchor_design: np.ndarray  # full design of the final anchors
    thin: dict[int, tuple]  # terms set aside: column -> (common value, anchors set aside)

    @property
    def terms(self) -> list[str]:
        return [DESIGN_COLUMNS[j] for j in self.choice.keep]

    @property
    def sigma(self) -> float:
        return float(np.sqrt(self.fit.sigma2))

    @property
    def df(self) -> float:
        return self.fit.df

    def coefficient(self, term: str) -> tuple[float, float] | None:
        if term not in self.terms:
            return None
        i = self.terms.index(term)
        return float(self.fit.beta[i]), float(self.fit.standard_errors()[i])


@dataclasses.dataclass
class ModelFailure:
    reason: str


def fit_model(
    design: np.ndarray,
    rt: np.ndarray,
    anchor_positions: np.ndarray,
    heads: np.ndarray,
    rows: np.ndarray,
    alpha: float,
    min_anchors: int,
) -> FittedModel | ModelFailure:
    """Fit on the anchors, screening out anchors that the others contradict."""
    n = len(anchor_positions)
    if n < min_anchors:
        return ModelFailure(
            f"only {n} usable anchor{'s' if n != 1 else ''} (MS/MS-confirmed peaks that are not "
            f"fragments); the model needs at least min_anchors = {min_anchors}"
        )
    kept, thin = set_aside_thin_terms(design, np.asarray(anchor_positions))
    excluded: list[int] = []
    for _ in range(_MAX_SCREENING_ROUNDS):
        choice = choose_columns(design[kept])
        failure = _check_identifiable(choice, len(kept))
        if failure:
            return failure
        fit = fit_random_intercept(design[kept][:, choice.keep], heads[kept], rt[kept])
        if fit.n - fit.n_fixed < 3:
            break
        t_external, _ = deletion_diagnostics(fit)
        testable = fit.leverage < _TESTABLE
        p_bonferroni = np.minimum(1.0, len(kept) * 2 * stats.t.sf(np.abs(t_external), fit.df - 1))
        significant = testable & (p_bonferroni < alpha)
        room = len(kept) - max(min_anchors, len(choice.keep) + 3)
        if not significant.any() or room <= 0:
            break
        candidates = np.flatnonzero(significant)
        worst_first = candidates[np.lexsort((rows[kept[candidates]], -np.abs(t_external[candidates])))]
        drop = worst_first[:room]
        excluded.extend(kept[drop].tolist())
        kept = np.delete(kept, drop)
    choice = choose_columns(design[kept])
    failure = _check_identifiable(choice, len(kept))
    if failure:
        return failure
    fit = fit_random_intercept(design[kept][:, choice.keep], heads[kept], rt[kept])
    return FittedModel(choice, fit, kept, np.asarray(excluded, dtype=np.int64), design[kept], thin)


def _check_identifiable(choice: ColumnChoice, n: int) -> ModelFailure | None:
    composition_terms = [j for j in choice.keep if DESIGN_COLUMNS[j] not in ("intercept", "series")]
    if not composition_terms:
        return ModelFailure(
            "every anchor has the same composition, so no composition effect can be estimated; "
            "the model needs anchors that differ in chain length, saturation or glycan"
        )
    if n - len(choice.keep) < 1:
        return ModelFailure(
            f"{n} anchors for {len(choice.keep)} model terms: the fit would pass exactly through every "
            "anchor, leaving nothing to judge its error; add anchors"
        )
    return None


@dataclasses.dataclass
class Predictions:
    """Per-row prediction, interval and test, aligned with the frame (NaN where not predicted)."""

    predicted: np.ndarray
    pi_low: np.ndarray
    pi_high: np.ndarray
    studentized: np.ndarray
    p_value: np.ndarray
    estimable: np.ndarray
    sole_support: np.ndarray  # anchors in the fit that cannot be judged without themselves


def choose_series(
    model: FittedModel,
    design: np.ndarray,
    rt: np.ndarray,
    heads: np.ndarray,
    free: np.ndarray,
) -> np.ndarray:
    """Judge each `free` row against the isomer series (a or b, if the anchors span it) it fits best.

    A peak that is not an anchor may be the second isomer of a name whose first isomer was
    not observed, so its rank by RT says little; the series whose prediction lies nearest
    its RT is the charitable reading, and the peak is an outlier only if even that fails.
    Returns the design with the series column set accordingly.
    """
    column = DESIGN_COLUMNS.index("series")
    if not free.any():
        return design
    adjusted = design.copy()
    if "series" not in model.terms:
        # No series effect could be learned: every peak is judged as the anchors' series.
        adjusted[free, column] = model.anchor_design[0, column]
        return adjusted
    # Isomers come in pairs (GD1a/GD1b, GT1a/GT1b); a third series is rare enough that a peak
    # needing it should be looked at, so the charitable reading stops at the second series.
    highest = min(int(model.anchor_design[:, column].max()), MAX_CHARITABLE_SERIES)
    rows = np.flatnonzero(free)
    x = design[rows][:, model.choice.keep]
    position = model.choice.keep.index(column)
    x[:, position] = 0.0
    base, _ = model.fit.predict(x, heads[rows])
    slope = model.fit.beta[position]
    candidates = base[:, None] + slope * np.arange(highest + 1)[None, :]
    adjusted[rows, column] = np.argmin(np.abs(rt[rows][:, None] - candidates), axis=1)
    return adjusted


def predict(
    model: FittedModel,
    design: np.ndarray,
    rt: np.ndarray,
    heads: np.ndarray,
    targets: np.ndarray,
    pi_level: float,
) -> Predictions:
    """Predict RT with a prediction interval and a two-sided test for every target row.

    Anchors in the fit are judged by the fit without them (leave-one-out), so an anchor
    cannot vouch for itself; every other row by the full fit. A row whose head group has
    no anchor gets the between-group variance added to its prediction variance.
    """
    n = len(rt)
    nan = np.full(n, np.nan)
    out = Predictions(
        nan.copy(),
        nan.copy(),
        nan.copy(),
        nan.copy(),
        nan.copy(),
        np.zeros(n, dtype=bool),
        np.zeros(n, dtype=bool),
    )
    fit = model.fit
    df = fit.df
    quantile = 0.5 + pi_level / 2

    ok = np.zeros(n, dtype=bool)
    ok[targets] = estimable(model.anchor_design, design[targets])
    out.estimable = ok
    fitted, variance = fit.predict(design[ok][:, model.choice.keep], heads[ok])
    se = np.sqrt(variance)
    _fill(out, ok, fitted, se, rt[ok], df, quantile)

    # Anchors of the fit: leave-one-out prediction and the externally studentised residual.
    _t_external, deleted_sd = deletion_diagnostics(fit)
    testable = (fit.leverage < _TESTABLE) & (df > 1)
    a = model.anchors[testable]
    h = fit.leverage[testable]
    loo_prediction = rt[a] - fit.resid[testable] / (1 - h)
    _fill(
        out,
        a,
        loo_prediction,
        deleted_sd[testable] / np.sqrt(1 - h),
        rt[a],
        df - 1,
        quantile,
    )
    untestable = model.anchors[~testable]
    out.sole_support[untestable] = True
    for array in (out.predicted, out.pi_low, out.pi_high, out.studentized, out.p_value):
        array[untestable] = np.nan
    return out


def _fill(out: Predictions, where, predicted, se, observed, df, quantile) -> None:
    half = stats.t.ppf(quantile, df) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (observed - predicted) / se
    out.predicted[where] = predicted
    out.pi_low[where] = predicted - half
    out.pi_high[where] = predicted + half
    out.studentized[where] = t
    out.p_value[where] = 2 * stats.t.sf(np.abs(t), df)


def loo_metrics(model: FittedModel, rt: np.ndarray, excluded_errors: np.ndarray) -> dict[str, float | int]:
    """Leave-one-out RMSEP and Q² over the fitted anchors, in closed form from the hat matrix.

    `loo_rmsep_all_anchors` also counts the screened-out anchors, each by its error against the
    final fit (which never saw it): the figure a sceptic would quote.
    """
    fit = model.fit
    testable = fit.leverage < _TESTABLE
    loo_errors = fit.resid[testable] / (1 - fit.leverage[testable])
    y = rt[model.anchors][testable]
    press = float(np.sum(loo_errors**2))
    total = float(np.sum((y - y.mean()) ** 2))
    all_errors = np.concatenate([loo_errors, excluded_errors])
    return {
        "loo_rmsep": float(np.sqrt(press / len(y))) if len(y) else float("nan"),
        "loo_rmsep_all_anchors": float(np.sqrt(np.mean(all_errors**2))) if len(all_errors) else float("nan"),
        "loo_q2": 1 - press / total if total > 0 else float("nan"),
        "n_loo": int(testable.sum()),
    }


def lohgo_rmsep(design: np.ndarray, rt: np.ndarray, anchors: np.ndarray, heads: np.ndarray) -> dict:
    """Leave-one-head-group-out RMSEP: predict each head group's anchors from the other groups."""
    errors: list[np.ndarray] = []
    scored: list[str] = []
    skipped: list[str] = []
    head_of = heads[anchors]
    for head in sorted(set(head_of.tolist())):
        test = anchors[head_of == head]
        train = anchors[head_of != head]
        choice = choose_columns(design[train]) if len(train) else None
        if choice is None or len(train) - len(choice.keep) < 1:
            skipped.append(head)
            continue
        ok = estimable(design[train], design[test])
        if not ok.any():
            skipped.append(head)
            continue
        fit = fit_random_intercept(design[train][:, choice.keep], heads[train], rt[train])
        predicted, _ = fit.predict(design[test[ok]][:, choice.keep], heads[test[ok]])
        errors.append(rt[test[ok]] - predicted)
        scored.append(head)
    all_errors = np.concatenate(errors) if errors else np.zeros(0)
    return {
        "lohgo_rmsep": float(np.sqrt(np.mean(all_errors**2))) if len(all_errors) else float("nan"),
        "lohgo_n_scored": len(all_errors),
        "lohgo_groups_scored": scored,
        "lohgo_groups_unscorable": skipped,
    }


def logp_line_metrics(log_p: np.ndarray, rt: np.ndarray, anchors: np.ndarray) -> dict[str, object]:
    """The legacy baseline, one straight line of RT on Log P over the same anchors."""
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
            "reason": "Log P does not vary among the anchors",
            "loo_rmsep": float("nan"),
            "loo_q2": float("nan"),
        }
    x = np.column_stack([np.ones(len(anchors)), log_p[anchors]])
    result = sm.OLS(rt[anchors], x).fit()
    h = result.get_influence().hat_matrix_diag
    loo = result.resid / (1 - h)
    y = rt[anchors]
    return {
        **report,
        "status": "fitted",
        "coefficients": [
            {"term": term, "label": term, "estimate": float(b), "std_error": float(s)}
            for term, b, s in zip(("intercept", "log_p"), result.params, result.bse, strict=True)
        ],
        "n_anchors_used": len(anchors),
        "residual_sd": float(np.sqrt(result.scale)),
        "df_resid": int(result.df_resid),
        "loo_rmsep": float(np.sqrt(np.mean(loo**2))),
        "loo_q2": float(1 - np.sum(loo**2) / np.sum((y - y.mean()) ** 2)),
    }
