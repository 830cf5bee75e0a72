"""Rule 1, the fit: a pooled composition model of retention time on the anchors.

RT is linear in the ceramide (carbons with a curvature term, double bonds, a saturation step
where the anchors show it, oxygens), the glycan (sialic acids, neutral core sugars, each
modification) and the isomer series index of each head group that has anchors on two series,
plus a random intercept per head group (analysis.mixed). The head-group intercept lets a group
with anchors keep its own offset while a group without anchors is predicted from the
composition alone, with the between-group spread added to its interval. The choice of terms
is justified by cross-validated error on the porcine brain sample (benchmarks/model_choice.py).

Terms the anchors cannot estimate are left out, and rows that need them are not predicted.
Anchors whose externally studentised residual is significant after Bonferroni correction are
left out of the fit (reported as excluded), so a wrong anchor cannot drag the fit.

This module gives the part of each prediction's variance the anchors themselves can vouch for
(residual, coefficients, head group); analysis.variance adds what they cannot.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import special

from analysis.design import (
    SERIES_PREFIX,
    SOFT_TERMS,
    ColumnChoice,
    choose_columns,
    estimable,
    set_aside_thin_terms,
)
from analysis.mixed import PenalisedFit, deletion_diagnostics, fit_random_effects

_MAX_SCREENING_ROUNDS = 50
TESTABLE = 1 - 1e-8  # leverage below which an anchor can be judged without itself


@dataclasses.dataclass
class SeriesOffsets:
    """The isomer-series offsets learned per head group, and the pooled offset for the others."""

    learned: dict[str, tuple[float, float]]  # head -> (offset, standard error)
    pooled: float | None  # precision-weighted mean of the learned offsets; None when none is learned
    pooled_se: float
    between_sd: float  # how much another head group's offset may differ from the pooled one
    between_method: str
    weights: np.ndarray  # over the fit's kept columns: a · θ with a = weights is the pooled offset

    def offset(self, head: str) -> tuple[float, float] | None:
        """(offset, its uncertainty for this head group), or None when no offset is known at all."""
        if head in self.learned:
            return self.learned[head]
        if self.pooled is None:
            return None
        return self.pooled, float(np.hypot(self.pooled_se, self.between_sd))


@dataclasses.dataclass
class FittedModel:
    columns: list[str]  # every design column: composition terms, then one series column per head
    choice: ColumnChoice
    fit: PenalisedFit
    anchors: np.ndarray  # frame positions of the anchors in the final fit
    excluded: np.ndarray  # frame positions of anchors screened out, in exclusion order
    anchor_design: np.ndarray  # full design of the final anchors
    thin: dict[int, tuple]  # terms set aside: column -> (common value, anchors set aside)
    series: SeriesOffsets
    screening_t: np.ndarray  # externally studentised residual of each excluded anchor when it was dropped

    @property
    def terms(self) -> list[str]:
        return [self.columns[j] for j in self.choice.keep]

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

    @property
    def anchor_heads(self) -> set[str]:
        factor = self.fit.factor("head")
        return set(factor.levels) if factor else set()


@dataclasses.dataclass
class ModelFailure:
    reason: str


def t_quantile(probability: float, df: float) -> float:
    return float(special.stdtrit(df, probability))


def t_two_sided_p(t: np.ndarray, df: float) -> np.ndarray:
    return 2 * special.stdtr(df, -np.abs(t))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p values (q values), as scipy.stats.false_discovery_control.

    Written out because importing scipy.stats costs a second in every fresh process; the tests
    check it against scipy's.
    """
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    adjusted = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


def fit_model(
    design: np.ndarray,
    columns: list[str],
    rt: np.ndarray,
    anchor_positions: np.ndarray,
    *,
    labels: np.ndarray,
    rows: np.ndarray,
    alpha: float,
    min_anchors: int,
) -> FittedModel | ModelFailure:
    """Fit on the anchors, screening out anchors that the others contradict.

    `labels` holds each row's head group and prefix (two columns): the random intercepts.
    """
    n = len(anchor_positions)
    if n < min_anchors:
        return ModelFailure(
            f"only {n} usable anchor{'s' if n != 1 else ''} (MS/MS-confirmed peaks that are not "
            f"fragments); the model needs at least min_anchors = {min_anchors}"
        )
    kept, thin = set_aside_thin_terms(design, np.asarray(anchor_positions), columns)
    forbidden = {j for j in thin if columns[j] in SOFT_TERMS}
    excluded: list[int] = []
    screening_t: list[float] = []
    fit = None
    for _ in range(_MAX_SCREENING_ROUNDS):
        choice = _choose(design[kept], forbidden)
        failure = _check_identifiable(choice, columns, len(kept))
        if failure:
            return failure
        fit = _fit(design[kept][:, choice.keep], labels[kept], rt[kept])
        screened = kept
        if fit.n - fit.n_fixed < 3:
            break
        t_external, _ = deletion_diagnostics(fit)
        testable = fit.leverage < TESTABLE
        p_bonferroni = np.minimum(1.0, len(kept) * t_two_sided_p(t_external, fit.df - 1))
        significant = testable & (p_bonferroni < alpha)
        room = len(kept) - max(min_anchors, len(choice.keep) + 3)
        if not significant.any() or room <= 0:
            break
        candidates = np.flatnonzero(significant)
        worst_first = candidates[np.lexsort((rows[kept[candidates]], -np.abs(t_external[candidates])))]
        drop = worst_first[:room]
        excluded.extend(kept[drop].tolist())
        screening_t.extend(t_external[drop].tolist())
        kept = np.delete(kept, drop)
    if fit is None or screened is not kept:  # the last round left anchors out: fit once more without them
        choice = _choose(design[kept], forbidden)
        failure = _check_identifiable(choice, columns, len(kept))
        if failure:
            return failure
        fit = _fit(design[kept][:, choice.keep], labels[kept], rt[kept])
    series = _series_offsets(fit, columns, choice)
    return FittedModel(
        columns,
        choice,
        fit,
        kept,
        np.asarray(excluded, dtype=np.int64),
        design[kept],
        thin,
        series,
        np.asarray(screening_t, dtype=float),
    )


def _fit(x: np.ndarray, labels: np.ndarray, y: np.ndarray) -> PenalisedFit:
    """REML fit with a random intercept per head group and per prefix within it.

    The variance ratios come from the anchors whose head group and prefix both have another
    anchor: a group with one anchor has an offset that is that anchor's own error as much as the
    group's, so left in the estimate a single wrong anchor inflates the group variance and hides
    itself (and widens every unanchored group's interval). The ratios are then held for the fit
    on all anchors.
    """
    labels = np.asarray(labels, dtype=object)
    factors = [("head", labels[:, 0]), ("prefix", labels[:, 1])]
    corroborated = np.ones(len(y), dtype=bool)
    for _, values in factors:
        _, inverse, counts = np.unique(values.astype(str), return_inverse=True, return_counts=True)
        corroborated &= counts[inverse] >= 2
    heads_left = len(set(labels[corroborated, 0].tolist()))
    if corroborated.all() or heads_left < 2:
        return fit_random_effects(x, factors, y)
    sub = x[corroborated]
    choice = choose_columns(sub)
    if corroborated.sum() - len(choice.keep) < 2:
        return fit_random_effects(x, factors, y)
    pilot_factors = [(name, values[corroborated]) for name, values in factors]
    pilot = fit_random_effects(sub[:, choice.keep], pilot_factors, y[corroborated])
    ratios = {f.name: f.log_lambda for f in pilot.factors}
    return fit_random_effects(x, factors, y, [ratios.get(name) for name, _ in factors])


def _choose(anchor_design: np.ndarray, forbidden: set[int]) -> ColumnChoice:
    if not forbidden:
        return choose_columns(anchor_design)
    masked = anchor_design.copy()
    for j in forbidden:
        masked[:, j] = masked[0, j] if len(masked) else 0.0
    choice = choose_columns(masked)
    for j in forbidden:
        choice.constant.pop(j, None)
    return choice


def _check_identifiable(choice: ColumnChoice, columns: list[str], n: int) -> ModelFailure | None:
    composition_terms = [
        j for j in choice.keep if columns[j] != "intercept" and not columns[j].startswith(SERIES_PREFIX)
    ]
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


def _series_offsets(fit: PenalisedFit, columns: list[str], choice: ColumnChoice) -> SeriesOffsets:
    """Per-head offsets from the fit; pooled offset and its between-head spread for the others.

    With two or more learned offsets the between-head spread is estimated (DerSimonian–Laird);
    with one, nothing says how another head group's spacing differs, so it is taken to be as
    large as the offset itself (another head group's isomers may sit anywhere from together to
    twice as far apart).
    """
    se = fit.standard_errors()
    positions = [i for i, j in enumerate(choice.keep) if columns[j].startswith(SERIES_PREFIX)]
    learned = {columns[choice.keep[i]][len(SERIES_PREFIX) : -1]: (float(fit.beta[i]), float(se[i])) for i in positions}
    weights = np.zeros(len(choice.keep))
    if not positions:
        return SeriesOffsets({}, None, 0.0, 0.0, "no head group has anchors on two isomer series", weights)
    estimates = np.array([fit.beta[i] for i in positions])
    variances = np.maximum(np.array([se[i] ** 2 for i in positions]), 1e-12)
    w = (1 / variances) / np.sum(1 / variances)
    weights[positions] = w
    pooled = float(w @ estimates)
    pooled_se = float(
        np.sqrt(
            weights[: fit.n_fixed] @ fit.s_inverse[: fit.n_fixed, : fit.n_fixed] @ weights[: fit.n_fixed] * fit.sigma2
        )
    )
    if len(positions) >= 2:
        q = float(np.sum((estimates - pooled) ** 2 / variances))
        c = float(np.sum(1 / variances) - np.sum(1 / variances**2) / np.sum(1 / variances))
        between = max(0.0, (q - (len(positions) - 1)) / c) if c > 0 else 0.0
        method = f"DerSimonian–Laird over the {len(positions)} head groups with a learned offset"
        between_sd = float(np.sqrt(between))
    else:
        between_sd = abs(pooled)
        method = (
            "only one head group has anchors on two series, so another head group's offset is "
            "assumed uncertain by the offset itself"
        )
    return SeriesOffsets(learned, pooled, pooled_se, between_sd, method, weights)


@dataclasses.dataclass
class FitPrediction:
    """What the fit says about rows at one series position (NaN where it cannot say)."""

    predicted: np.ndarray
    var_residual: np.ndarray
    var_parameter: np.ndarray
    var_head: np.ndarray  # the head-group variance where the head group has no anchor
    var_prefix: np.ndarray  # the prefix variance where the prefix has no anchor
    var_isomer: np.ndarray  # between-head uncertainty of a borrowed series offset


def predictable(model: FittedModel, design: np.ndarray) -> np.ndarray:
    """True where a row's composition lies in what the anchors can estimate."""
    probe = _without_series(model, design)
    anchors = _without_series(model, model.anchor_design)
    return estimable(anchors, probe)


def _without_series(model: FittedModel, design: np.ndarray) -> np.ndarray:
    out = design.copy()
    for j, column in enumerate(model.columns):
        if column.startswith(SERIES_PREFIX):
            out[:, j] = 0.0
    for j, column in enumerate(model.columns):
        if column in SOFT_TERMS and j not in model.choice.keep:
            out[:, j] = model.anchor_design[0, j] if len(model.anchor_design) else 0.0
    return out


def predict_at(
    model: FittedModel,
    design: np.ndarray,
    labels: np.ndarray,
    position: np.ndarray,
) -> FitPrediction:
    """Predict rows as isomer series `position` (0 = the anchors' first series) of their head group.

    Head groups with a learned offset use it (exactly, through the fit's covariance); the others
    use the pooled offset and carry its between-head uncertainty.
    """
    keep = model.choice.keep
    labels = np.asarray(labels, dtype=object)
    heads = labels[:, 0]
    x = _without_series(model, design)[:, keep].copy()
    position = np.asarray(position, dtype=float)
    learned_columns = {
        model.columns[j][len(SERIES_PREFIX) : -1]: i
        for i, j in enumerate(keep)
        if model.columns[j].startswith(SERIES_PREFIX)
    }
    var_isomer = np.zeros(len(x))
    if model.series.pooled is not None:
        column_of_row = np.array([learned_columns.get(h, -1) for h in heads], dtype=np.int64)
        own = column_of_row >= 0
        x[np.flatnonzero(own), column_of_row[own]] = position[own]
        borrowed = ~own & (position != 0)
        x[borrowed] += position[borrowed, None] * model.series.weights[None, :]
        var_isomer[borrowed] = (position[borrowed] * model.series.between_sd) ** 2
    fit = model.fit
    b, level, _ = fit.rows(x, labels)
    leverage = fit.quad(b, level)
    unseen = dict(zip([f.name for f in fit.factors], fit.unseen(labels), strict=True))
    zero = np.zeros(len(x))
    head, prefix = fit.factor("head"), fit.factor("prefix")
    return FitPrediction(
        fit.mean(b, level),
        np.full(len(x), fit.sigma2),
        fit.sigma2 * leverage,
        np.where(unseen["head"], head.tau2, 0.0) if head else zero,
        np.where(unseen["prefix"], prefix.tau2, 0.0) if prefix else zero,
        var_isomer,
    )


@dataclasses.dataclass
class AnchorJudgement:
    """Leave-one-out prediction of every anchor in the fit (frame positions in `anchors`)."""

    anchors: np.ndarray
    predicted: np.ndarray
    var_residual: np.ndarray
    var_parameter: np.ndarray
    testable: np.ndarray


def judge_anchors(model: FittedModel, rt: np.ndarray) -> AnchorJudgement:
    """Each anchor of the fit predicted by the fit without it, in closed form (e/(1 − h))."""
    fit = model.fit
    _t, deleted_sd = deletion_diagnostics(fit)
    h = fit.leverage
    testable = (h < TESTABLE) & (fit.df > 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted = rt[model.anchors] - fit.resid / (1 - h)
        var_parameter = deleted_sd**2 * h / (1 - h)
    return AnchorJudgement(model.anchors, predicted, deleted_sd**2, var_parameter, testable)


def loo_errors(model: FittedModel) -> np.ndarray:
    fit = model.fit
    testable = fit.leverage < TESTABLE
    return fit.resid[testable] / (1 - fit.leverage[testable])
