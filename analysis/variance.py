"""What the anchors cannot know: the variance a prediction carries beyond the fit's own.

The fit (analysis.model) vouches for the residual scatter of the anchors, the uncertainty of
its coefficients and, for a head group without anchors, the between-head variance. A peak that
is not an anchor needs more, and each part is estimated and reported separately:

- species: a composition no anchor has departs from the additive model by more than the
  anchors' own scatter (the anchors are the compositions the fit was made on);
- prefix: a modification effect learned in one prefix (dHex from GD1+dHex) does not transfer
  exactly to another (GM1+dHex), so a row whose prefix has no anchor carries that variance;
- extrapolation: outside the anchors' range a linear term is not trusted (saturated ceramides
  elute about 0.5 min earlier than a double-bond slope learned on 1–2 double bonds says);
- series ambiguity: when a prefix's anchors are one peak per species, the data cannot tell
  whether they are the a or the b isomers, and a modification learned from them is uncertain
  by the isomer offset.

The anchors cannot estimate the first three (a nested REML fit puts the prefix variance near
zero because each modification is learned from one prefix, which absorbs that prefix's offset).
They are therefore calibrated on the peaks the analysis judges, robustly: the main peak of
every name that has no anchor, grouped by situation. The estimate is the robust mean square of
their residuals (squared median plus squared scaled MAD, so that a consistent bias counts as
error and up to half of them may be misidentified without moving it) less the variance the row
already has. Nothing here moves a prediction; it only widens intervals.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from analysis.design import CARBON_CENTRE, MODIFICATION_TERMS, RANGE_TERMS, column_label
from analysis.model import FittedModel

MIN_CALIBRATION = 5  # main peaks needed to calibrate a component from the data
MAD_TO_SD = 1.4826


def robust_mean_square(values: np.ndarray) -> float:
    """Squared median plus squared scaled MAD: a mean square about zero that outliers barely move."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan")
    centre = float(np.median(values))
    spread = MAD_TO_SD * float(np.median(np.abs(values - centre)))
    return centre**2 + spread**2


@dataclasses.dataclass
class Component:
    """One calibrated variance component (min²) and how it was obtained."""

    name: str
    variance: float
    n: int
    method: str
    calibrated: bool

    @property
    def sd(self) -> float:
        return float(np.sqrt(self.variance))

    def report(self) -> dict:
        return {
            "component": self.name,
            "variance": self.variance,
            "sd": self.sd,
            "n": self.n,
            "method": self.method,
            "calibrated": self.calibrated,
        }


def calibrate(name: str, residuals: np.ndarray, other_variance: np.ndarray, what: str) -> Component | None:
    """The variance to add so the residuals' robust mean square is matched; None with too few."""
    n = len(residuals)
    if n < MIN_CALIBRATION:
        return None
    excess = robust_mean_square(residuals) - float(np.median(other_variance))
    return Component(
        name,
        max(0.0, excess),
        n,
        f"robust mean square of the residuals of {n} {what}, less the variance they already carry",
        True,
    )


def calibrate_by_group(
    name: str,
    centres: np.ndarray,
    carried: np.ndarray,
    what: str,
) -> tuple[Component | None, np.ndarray]:
    """Between-group variance from one centre per group (the peaks of a group share its offset).

    Every group counts once: a group that does not transfer is what the component must cover,
    and a misidentified peak moves its group's centre (a median) only if it is half the group.
    The estimate is the mean square of the centres less the variance a centre carries from its
    own peaks, leaving out groups beyond three robust standard deviations (a whole prefix
    misassigned is not a transfer error; the robust scale is the MAD of the centres about zero).
    Returns the component (None with fewer
    than MIN_CALIBRATION groups) and which groups were kept.
    """
    kept = np.ones(len(centres), dtype=bool)
    if len(centres) < MIN_CALIBRATION:
        return None, kept

    def estimate(mask):
        return max(0.0, float(np.mean(centres[mask] ** 2) - np.mean(carried[mask])))

    # A robust first scale (the MAD about zero, which several wild groups cannot inflate) decides
    # which groups are gross; the estimate is then the plain mean square of the others.
    first = max(0.0, (MAD_TO_SD * float(np.median(np.abs(centres)))) ** 2 - float(np.median(carried)))
    kept = np.abs(centres) <= 3 * np.sqrt(first + carried)
    if kept.sum() < MIN_CALIBRATION:
        kept[:] = True
    variance = estimate(kept)
    rejected = int((~kept).sum())
    return (
        Component(
            name,
            variance,
            int(kept.sum()),
            f"mean square over {int(kept.sum())} {what}, less the variance those centres carry"
            + (
                f"; {rejected} group{'s' if rejected != 1 else ''} beyond three standard deviations left out"
                if rejected
                else ""
            ),
            True,
        ),
        kept,
    )


# ------------------------------------------------------------------ extrapolation


@dataclasses.dataclass(frozen=True)
class Side:
    """One side of one term's range: below the anchors' lowest value, or above their highest."""

    term: str
    above: bool

    @property
    def label(self) -> str:
        return f"{column_label(self.term)} {'above' if self.above else 'below'} the anchors' range"


def anchor_ranges(model: FittedModel) -> dict[str, tuple[float, float]]:
    """Range of each range term among the anchors of the fit (terms the fit uses, plus DB)."""
    ranges = {}
    for term in RANGE_TERMS:
        j = model.columns.index(term)
        if j in model.choice.keep or term == "double_bonds":
            values = model.anchor_design[:, j]
            ranges[term] = (float(values.min()), float(values.max()))
    return ranges


def extrapolation_distances(design: np.ndarray, columns: list[str], ranges: dict) -> dict[Side, np.ndarray]:
    """How far each row lies outside the anchors' range, per term side (0 inside)."""
    out: dict[Side, np.ndarray] = {}
    for term, (low, high) in ranges.items():
        values = design[:, columns.index(term)]
        below, above = np.maximum(low - values, 0.0), np.maximum(values - high, 0.0)
        if below.any():
            out[Side(term, False)] = below
        if above.any():
            out[Side(term, True)] = above
    return out


def per_unit_effect(model: FittedModel, side: Side, ranges: dict) -> float:
    """The term's own effect on RT per unit at the edge of the anchors' range (the fallback width)."""
    coefficient = model.coefficient(side.term)
    effect = abs(coefficient[0]) if coefficient else 0.0
    if side.term == "carbons" and model.coefficient("carbons_sq"):
        edge = ranges["carbons"][1 if side.above else 0]
        effect = abs(coefficient[0] + 2 * model.coefficient("carbons_sq")[0] * (edge - CARBON_CENTRE))
    return effect


# ------------------------------------------------------------------ series ambiguity


@dataclasses.dataclass
class AmbiguousPrefix:
    """A prefix whose anchors may be the b isomers as well as the a isomers."""

    prefix: str
    head: str
    n_anchors: int
    offset: float  # the head group's learned isomer offset
    shift: np.ndarray  # per row: prediction if the prefix's anchors were series b, less the prediction
    terms: list[str]  # terms learned only from this prefix, whose effect the reading changes
    effects: list[tuple[str, float, float]]  # (term, effect as read, effect if series b)


def ambiguous_prefixes(
    model: FittedModel,
    design: np.ndarray,
    heads: np.ndarray,
    prefix_keys: np.ndarray,
    names: np.ndarray,
    targets: np.ndarray,
) -> list[AmbiguousPrefix]:
    """Modifications learned from one prefix whose anchors could as well be the next isomer series.

    If a modification's only anchors are one prefix with one anchor per species (GD1+dHex), the
    data cannot tell whether those anchors are the a or the b isomers of their head group: read
    as a, dHex is +0.35 min; read as b, it is that less the head group's isomer offset (−0.10),
    and every anchor's fitted RT, so the fit, is exactly the same. The second reading moves the
    prediction of every other row that carries the modification by −(its count / the prefix's
    count) × the offset; the prefix's own rows are pinned by its anchors.
    """
    out = []
    anchors = model.anchors
    fit = model.fit
    kept = {model.columns[j]: i for i, j in enumerate(model.choice.keep)}
    anchor_prefix = prefix_keys[anchors].astype(str)
    for term in MODIFICATION_TERMS:
        if term not in kept:
            continue
        column = model.columns.index(term)
        carrying = model.anchor_design[:, column] != 0
        prefixes = set(anchor_prefix[carrying].tolist())
        if len(prefixes) != 1:
            continue
        (prefix,) = prefixes
        members = anchor_prefix == prefix
        head = heads[anchors[members]][0]
        if head not in model.series.learned:
            continue
        if len(set(names[anchors[members]].tolist())) < members.sum():
            continue  # a name with two anchors pins the series within the prefix
        count = float(model.anchor_design[members, column][0])
        offset = model.series.learned[head][0]
        as_read = float(fit.beta[kept[term]])
        shift = np.zeros(len(design))
        others = np.zeros(len(design), dtype=bool)
        others[targets] = True
        others &= prefix_keys != prefix
        shift[others] = -design[others, column] / count * offset
        out.append(
            AmbiguousPrefix(
                prefix,
                head,
                int(members.sum()),
                offset,
                shift,
                [term],
                [(term, as_read, as_read - offset / count)],
            )
        )
    return out
