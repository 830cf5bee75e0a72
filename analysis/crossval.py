"""Cross-validated figures of the RT model: leave one anchor, one prefix or one head group out.

Leave-one-out over anchors says how well the model interpolates among compositions like the
anchors'; it flatters, because most anchors have a sibling of the same prefix (28 of the
sample's 46 are GD1). Leave-one-prefix-out predicts every anchor of a prefix from a model that
never saw that prefix, which is the situation of most peaks an analyst checks; leave-one-head-
group-out does the same for whole head groups.

The folds come from scikit-learn's LeaveOneGroupOut. Each fold keeps the whole fit's variance
ratio (a head-group variance re-estimated from one head group fewer would be noise) and its
anchors (no re-screening), so leaving a group G out is exact in closed form: with H the hat
matrix of the penalised fit, the held-out errors are (I − H_GG)⁻¹ e_G and their variance
σ²(I − H_GG)⁻¹. A group whose anchors alone determine some coefficient (I − H_GG singular: a
modification only that prefix carries) cannot be scored, and is listed as such.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg

from analysis.model import FittedModel

_SINGULAR = 1e-10  # pivot of the fold's scaled normal equations below which a coefficient rests on the group


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
    """Predict each group's anchors from the fit without that group (sklearn's LeaveOneGroupOut)."""
    from sklearn.model_selection import LeaveOneGroupOut  # imported when needed: it costs a second

    anchors = model.anchors
    group_of = groups[anchors].astype(str)
    out: list[HeldOut] = []
    if len(set(group_of.tolist())) < 2:
        return out
    fit = model.fit
    labels = np.asarray(labels, dtype=object)
    a, _ = fit.augmented(model.anchor_design[:, model.choice.keep], labels[anchors])
    # How many anchors each head group and prefix has, to tell which a fold leaves without any.
    codes, totals, tau2 = [], [], []
    for k, name in enumerate(("head", "prefix")):
        _, code = np.unique(labels[anchors, k].astype(str), return_inverse=True)
        codes.append(code)
        totals.append(np.bincount(code))
        factor = fit.factor(name)
        tau2.append(factor.tau2 if factor else 0.0)
    system = np.linalg.inv(fit.c_inverse)  # AᵀA + penalty, the whole fit's normal equations
    scale = np.sqrt(np.diag(system))
    for _, test in LeaveOneGroupOut().split(anchors, groups=group_of):
        group = str(group_of[test[0]])
        left = [
            total[code[test]] - np.bincount(code[test], minlength=len(total))[code[test]]
            for code, total in zip(codes, totals, strict=True)
        ]
        head_lost = bool((left[0] == 0).any())
        # Woodbury: (I − A_G C⁻¹ A_Gᵀ)⁻¹ = I + A_G (C − A_GᵀA_G)⁻¹ A_Gᵀ, with C − A_GᵀA_G the fold's own
        # normal equations; it is singular exactly when the group alone determines a coefficient.
        fold = (system - a[test].T @ a[test]) / np.outer(scale, scale)
        try:
            factor = scipy.linalg.cho_factor(fold, check_finite=False)
        except np.linalg.LinAlgError:
            factor = None
        if factor is None or np.min(np.abs(np.diag(factor[0]))) ** 2 < _SINGULAR:
            out.append(HeldOut(group, anchors[:0], np.zeros(0), np.zeros(0), np.zeros(0), head_lost, len(test)))
            continue
        scaled = a[test] / scale
        solved = scipy.linalg.cho_solve(factor, scaled.T, check_finite=False)
        errors = fit.resid[test] + scaled @ (solved @ fit.resid[test])
        variance = fit.sigma2 * (1 + np.sum(scaled * solved.T, axis=1))
        # The part of the held-out variance that is the lost levels' own (head group, prefix).
        head_variance = np.where(left[0] > 0, 0.0, tau2[0]) + np.where(left[1] > 0, 0.0, tau2[1])
        out.append(
            HeldOut(
                group,
                anchors[test],
                rt[anchors[test]] - errors,
                np.maximum(variance - head_variance, 0.0),
                head_variance,
                head_lost,
                0,
            )
        )
    return out


def rmsep(held: list[HeldOut], rt: np.ndarray) -> tuple[float, int]:
    errors = np.concatenate([rt[h.positions] - h.predicted for h in held]) if held else np.zeros(0)
    return (float(np.sqrt(np.mean(errors**2))) if errors.size else float("nan")), int(errors.size)
