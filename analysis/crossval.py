"""Cross-validated figures of the RT model: leave one anchor, one prefix or one head group out.

Leave-one-out over anchors says how well the model interpolates among compositions like the
anchors'; it flatters, because most anchors have a sibling of the same prefix (28 of the
sample's 46 are GD1). Leave-one-prefix-out predicts every anchor of a prefix from a model that
never saw that prefix, which is the situation of most peaks an analyst checks; leave-one-head-
group-out does the same for whole head groups.

The folds are scikit-learn's LeaveOneGroupOut's (tests/analysis/test_crossval.py checks it).
Each fold keeps the whole fit's variance ratios (a head-group variance re-estimated from one
head group fewer would be noise) and its anchors (no re-screening), so leaving a group out is
exact in closed form: the fold's normal equations are the whole fit's minus the group's own
rows (analysis/mixed.py), and its predictions of the group's anchors carry σ²(1 + a C_fold⁻¹ aᵀ).
A coefficient that only the group's anchors carry (a modification only that prefix has, the
isomer offset of the only head group with one) is dropped from the fold; the group's anchors
that need it cannot be scored and are counted as such, the others are scored.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from analysis.model import FittedModel


@dataclasses.dataclass
class HeldOut:
    """Anchors predicted by a fold that left out their group."""

    group: str
    positions: np.ndarray  # frame positions of the scored anchors
    predicted: np.ndarray
    fit_variance: np.ndarray  # residual + coefficients of the fold's prediction
    head_variance: np.ndarray  # the head-group and prefix variances of the levels the fold left without anchors
    head_lost: bool
    n_unscorable: int  # anchors of the group the fold could not predict


def hold_out(model: FittedModel, rt: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> list[HeldOut]:
    """Predict each group's anchors from the fit without that group, groups in sorted order."""
    anchors = model.anchors
    group_of = groups[anchors].astype(str)
    out: list[HeldOut] = []
    if len(set(group_of.tolist())) < 2:
        return out
    fit = model.fit
    labels = np.asarray(labels, dtype=object)
    # How many anchors each head group and prefix has, to tell which a fold leaves without any.
    codes, totals, tau2 = [], [], []
    for k, name in enumerate(("head", "prefix")):
        _, code = np.unique(labels[anchors, k].astype(str), return_inverse=True)
        codes.append(code)
        totals.append(np.bincount(code))
        factor = fit.factor(name)
        tau2.append(factor.tau2 if factor else 0.0)
    for test in folds(group_of):
        group = str(group_of[test[0]])
        left = [
            total[code[test]] - np.bincount(code[test], minlength=len(total))[code[test]]
            for code, total in zip(codes, totals, strict=True)
        ]
        head_lost = bool((left[0] == 0).any())
        # The fold's normal equations are the whole fit's minus the group's rows. A coefficient only
        # the group carries (a modification of that prefix alone) is dropped, and the group's anchors
        # that need it cannot be scored; if the rest is still singular none can.
        fold = fit.without(test)
        scorable = fold.predictable(test) if fold is not None else np.zeros(len(test), dtype=bool)
        if not scorable.any():
            out.append(HeldOut(group, anchors[:0], np.zeros(0), np.zeros(0), np.zeros(0), head_lost, len(test)))
            continue
        predicted, variance = fold.predict_rows(test[scorable])
        # The part of the held-out variance that is the lost levels' own (head group, prefix).
        head_variance = np.where(left[0] > 0, 0.0, tau2[0]) + np.where(left[1] > 0, 0.0, tau2[1])
        head_variance = head_variance[scorable]
        out.append(
            HeldOut(
                group,
                anchors[test[scorable]],
                predicted,
                np.maximum(variance - head_variance, 0.0),
                head_variance,
                head_lost,
                int(np.count_nonzero(~scorable)),
            )
        )
    return out


def folds(groups: np.ndarray) -> list[np.ndarray]:
    """Positions of each group's members, one array per group in sorted order."""
    _, code = np.unique(groups, return_inverse=True)
    order = np.argsort(code, kind="stable")
    return np.split(order, np.cumsum(np.bincount(code))[:-1])


def rmsep(held: list[HeldOut], rt: np.ndarray) -> tuple[float, int]:
    errors = np.concatenate([rt[h.positions] - h.predicted for h in held]) if held else np.zeros(0)
    return (float(np.sqrt(np.mean(errors**2))) if errors.size else float("nan")), int(errors.size)
