"""Leave-group-out figures: the closed form equals refitting without the group."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.crossval import folds, hold_out
from analysis.design import DESIGN_COLUMNS
from analysis.mixed import fit_random_effects
from analysis.model import fit_model, predict_at


def world(seed: int):
    """Anchors of four head groups and a few prefixes, with carbons, double bonds and one modification."""
    rng = np.random.default_rng(seed)
    rows = []
    for head, sialic, offset in (("GD1", 2, 0.0), ("GT1", 3, -0.5), ("GM1", 1, 0.5), ("GQ1", 4, -1.0)):
        for oac in (0, 1):
            for c in range(34, 42, 2):
                rt = 9 + offset + 0.8 * (c - 36) + 0.08 * oac + rng.normal(0, 0.05)
                rows.append((head, sialic, oac, c, rt))
    n = len(rows)
    design = np.zeros((n, len(DESIGN_COLUMNS)))
    design[:, 0] = 1
    for i, (_, sialic, oac, c, _) in enumerate(rows):
        design[i, DESIGN_COLUMNS.index("carbons")] = c
        design[i, DESIGN_COLUMNS.index("sialic")] = sialic
        design[i, DESIGN_COLUMNS.index("neutral")] = 4
        design[i, DESIGN_COLUMNS.index("oac")] = oac
        design[i, DESIGN_COLUMNS.index("double_bonds")] = 1
        design[i, DESIGN_COLUMNS.index("oxygen")] = 2
    heads = np.array([r[0] for r in rows], dtype=object)
    prefixes = np.array([r[0] + ("+OAc" if r[2] else "") for r in rows], dtype=object)
    rt = np.array([r[4] for r in rows])
    return design, heads, prefixes, rt


@pytest.mark.parametrize("grouping", ["prefix", "head"])
def test_closed_form_equals_a_refit_without_the_group(grouping):
    design, heads, prefixes, rt = world(3)
    anchors = np.arange(len(rt))
    labels = np.column_stack([heads, prefixes])
    model = fit_model(design, DESIGN_COLUMNS, rt, anchors, labels=labels, rows=anchors + 1, alpha=1e-12, min_anchors=5)
    groups = prefixes if grouping == "prefix" else heads
    held = hold_out(model, rt, labels, groups)
    assert len(held) == len(set(groups))
    keep = model.choice.keep
    for fold in held:
        if not len(fold.positions):
            continue
        train = anchors[groups != fold.group]
        refit = fit_random_effects(
            design[train][:, keep],
            [("head", heads[train]), ("prefix", prefixes[train])],
            rt[train],
            model.fit.log_lambdas,
        )
        test = fold.positions
        expected, variance = refit.predict(design[test][:, keep], labels[test])
        assert fold.predicted == pytest.approx(expected, abs=1e-8)
        # Same variance ratio, so the variances differ only by the residual variance each fit estimates.
        scaled = variance * model.fit.sigma2 / refit.sigma2
        assert fold.fit_variance + fold.head_variance == pytest.approx(scaled, rel=1e-4)
        assert fold.head_lost == (grouping == "head")


def test_a_group_that_alone_carries_a_term_cannot_be_scored():
    design, heads, prefixes, rt = world(4)
    # Only GD1+OAc carries O-acetylation: left out, nothing else can estimate it.
    only = ~((prefixes != "GD1+OAc") & (design[:, DESIGN_COLUMNS.index("oac")] == 1))
    design, heads, prefixes, rt = design[only], heads[only], prefixes[only], rt[only]
    anchors = np.arange(len(rt))
    labels = np.column_stack([heads, prefixes])
    model = fit_model(design, DESIGN_COLUMNS, rt, anchors, labels=labels, rows=anchors + 1, alpha=1e-12, min_anchors=5)
    held = {fold.group: fold for fold in hold_out(model, rt, labels, prefixes)}
    assert len(held["GD1+OAc"].positions) == 0 and held["GD1+OAc"].n_unscorable == 4
    assert len(held["GT1"].positions) == 4


def test_anchors_that_do_not_need_the_groups_own_term_are_still_scored():
    """Leaving GD1 out removes the only O-acetylated anchors: GD1+OAc cannot be predicted, GD1 can."""
    design, heads, prefixes, rt = world(6)
    only = ~((heads != "GD1") & (design[:, DESIGN_COLUMNS.index("oac")] == 1))
    design, heads, prefixes, rt = design[only], heads[only], prefixes[only], rt[only]
    anchors = np.arange(len(rt))
    labels = np.column_stack([heads, prefixes])
    model = fit_model(design, DESIGN_COLUMNS, rt, anchors, labels=labels, rows=anchors + 1, alpha=1e-12, min_anchors=5)
    fold = next(f for f in hold_out(model, rt, labels, heads) if f.group == "GD1")
    assert fold.n_unscorable == int(np.sum(prefixes == "GD1+OAc")) == 4
    assert set(prefixes[fold.positions]) == {"GD1"} and len(fold.positions) == 4
    # The same prediction as a refit without GD1 and without the O-acetyl term it no longer has.
    keep = [j for j in model.choice.keep if DESIGN_COLUMNS[j] != "oac"]
    train = anchors[heads != "GD1"]
    refit = fit_random_effects(
        design[train][:, keep], [("head", heads[train]), ("prefix", prefixes[train])], rt[train], model.fit.log_lambdas
    )
    expected, _ = refit.predict(design[fold.positions][:, keep], labels[fold.positions])
    assert fold.predicted == pytest.approx(expected, abs=1e-8)


def test_held_out_prediction_matches_predict_at_of_the_refit_for_a_kept_head():
    design, heads, prefixes, rt = world(5)
    anchors = np.arange(len(rt))
    labels = np.column_stack([heads, prefixes])
    model = fit_model(design, DESIGN_COLUMNS, rt, anchors, labels=labels, rows=anchors + 1, alpha=1e-12, min_anchors=5)
    fold = next(f for f in hold_out(model, rt, labels, prefixes) if f.group == "GT1+OAc")
    assert not fold.head_lost
    direct = predict_at(model, design[fold.positions], labels[fold.positions], np.zeros(len(fold.positions)))
    # Left out, a prefix is predicted less well than by the fit that contains it, never better.
    assert np.all(fold.fit_variance >= direct.var_residual + direct.var_parameter - 1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_folds_are_scikit_learns_leave_one_group_out(seed):
    from sklearn.model_selection import LeaveOneGroupOut

    groups = np.random.default_rng(seed).choice(["GD1", "GM1", "GT1+OAc", "GD1a", "x"], size=60)
    expected = [test for _, test in LeaveOneGroupOut().split(groups, groups=groups)]
    got = folds(groups)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(np.sort(a), b)
