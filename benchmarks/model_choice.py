"""Which RT model? Cross-validated error and interval coverage of candidate models on the real sample.

Every candidate is fitted on the same anchors: the MS/MS-confirmed peaks that Rule 5 does not
call in-source fragments, each with the series index the engine gives it (its rank among the
anchors of its name). Three ways of holding anchors out, all with scikit-learn's splitters and
a refit per fold:

    LOO    LeaveOneOut: one anchor at a time (interpolation among compositions like the anchors')
    LOPO   LeaveOneGroupOut by prefix: every anchor of a prefix at once (a prefix never seen)
    LOHGO  LeaveOneGroupOut by head group: every anchor of a head group at once

For each: RMSEP, how many anchors could be scored (a fold that removes the only anchors of a
term cannot predict them), and the share of held-out anchors inside the candidate's own 95 %
prediction interval — the model's own, without the components the engine calibrates on the
peaks, which is what shows how overconfident a model is about what its anchors cannot know.
The last line is the engine as shipped, whose intervals carry those components.

    python benchmarks/model_choice.py [--data ../shared/data/porcine_brain_gangliosides.csv]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.linear_model import HuberRegressor
from sklearn.model_selection import LeaveOneGroupOut, LeaveOneOut

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.calls import modification_prefix
from analysis.design import DESIGN_COLUMNS, choose_columns, design_matrix, estimable, series_design
from analysis.fragments import find_fragments
from analysis.isomers import anchor_series
from analysis.mixed import fit_random_intercept
from analysis.params import Parameters
from analysis.pipeline import load_table, run_file

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "porcine_brain_gangliosides.csv"
COMPOSITION = [
    "carbons",
    "double_bonds",
    "oxygen",
    "sialic",
    "neutral",
    "hex",
    "hexnac",
    "dhex",
    "neuac",
    "neugc",
    "oac",
]
Z95 = stats.norm.ppf(0.975)

# A fitter takes (x, y, groups) and returns predict(x, groups) -> (mean, variance of a new observation).
Fitter = Callable[[np.ndarray, np.ndarray, np.ndarray], Callable]


def least_squares(x, y, groups):
    fit = fit_random_intercept(x, np.array(["all"] * len(y)), y)
    return lambda xt, gt: fit.predict(xt, np.array(["all"] * len(xt)))


def head_random_intercept(x, y, groups):
    fit = fit_random_intercept(x, groups, y)
    return lambda xt, gt: fit.predict(xt, gt)


def huber(x, y, groups):
    """scikit-learn's HuberRegressor; its interval uses the robust scale and no coefficient uncertainty."""
    model = HuberRegressor(fit_intercept=False, alpha=0.0, max_iter=2000).fit(x, y)
    return lambda xt, gt: (model.predict(xt), np.full(len(xt), model.scale_**2))


def cross_validate(x, y, heads, fitter: Fitter, splitter, groups=None) -> tuple[float, int, float]:
    """(RMSEP, anchors scored, coverage of the candidate's own 95 % interval)."""
    errors, inside = [], []
    for train, test in splitter.split(x, y, groups):
        columns = choose_columns(x[train]).keep
        if len(train) - len(columns) < 2:
            continue
        ok = estimable(x[train][:, columns], x[test][:, columns]) & estimable(x[train], x[test])
        if not ok.any():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predict = fitter(x[train][:, columns], y[train], heads[train])
        mean, variance = predict(x[test][ok][:, columns], heads[test][ok])
        error = y[test][ok] - mean
        errors.append(error)
        inside.append(np.abs(error) <= Z95 * np.sqrt(variance))
    if not errors:
        return float("nan"), 0, float("nan")
    error = np.concatenate(errors)
    return float(np.sqrt(np.mean(error**2))), len(error), float(np.mean(np.concatenate(inside)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()

    table = load_table(args.data)
    frame = table.frame
    valid = frame["valid"].to_numpy()
    params = Parameters()
    fragments = find_fragments(frame, valid, params.fragment_window, params.fragment_min_precursor_ratio)
    members = valid & ~fragments.is_fragment
    anchors = np.flatnonzero(members & frame["anchor"].to_numpy())
    all_anchors = np.flatnonzero(valid & frame["anchor"].to_numpy())
    index = anchor_series(frame, anchors)
    heads = frame["head"].to_numpy(object)
    series_heads = sorted({h for h in heads[anchors[index[anchors] > 0]]})
    base = design_matrix(frame)
    series = series_design(heads, index, series_heads)
    prefixes = modification_prefix(frame)
    rt = frame["rt"].to_numpy(float)
    log_p = frame["log_p"].to_numpy(float)

    def columns(names, with_series=True, extra=()):
        picked = base[:, [0, *[DESIGN_COLUMNS.index(n) for n in names]]]
        parts = [picked, series] if with_series else [picked]
        return np.column_stack([*parts, *extra])

    saturated = base[:, DESIGN_COLUMNS.index("saturated")]
    prefix_dummies = (prefixes[:, None] == np.array(sorted(set(prefixes[anchors])))[None, :]).astype(float)
    curved = [*COMPOSITION, "carbons_sq"]
    candidates = [
        (
            "Log P line (legacy), every confirmed anchor",
            np.column_stack([np.ones(len(rt)), log_p]),
            least_squares,
            all_anchors,
        ),
        ("Log P line", np.column_stack([np.ones(len(rt)), log_p]), least_squares, anchors),
        ("Log P + one intercept per prefix", np.column_stack([prefix_dummies, log_p]), least_squares, anchors),
        ("composition", columns(COMPOSITION, with_series=False), least_squares, anchors),
        ("composition + isomer series per head group", columns(COMPOSITION), least_squares, anchors),
        ("  + (carbons − 36)²", columns(curved), least_squares, anchors),
        ("  + head-group random intercept (engine)", columns(curved), head_random_intercept, anchors),
        ("  + saturation step", columns(curved, extra=[saturated]), head_random_intercept, anchors),
        ("  + Log P as a covariate", columns(curved, extra=[log_p]), head_random_intercept, anchors),
        ("  fitted by HuberRegressor (robust)", columns(curved), huber, anchors),
    ]
    print(f"data: {args.data}")
    print(
        f"anchors: {len(all_anchors)} confirmed, {len(anchors)} after Rule 5 removed in-source fragments; "
        f"saturated anchors left: {int(saturated[anchors].sum())}"
    )
    print("RMSEP in min (anchors scored) and the share inside the candidate's own 95 % interval\n")
    print(f"{'model':46s} {'LOO':>16s} {'LOPO':>16s} {'LOHGO':>16s}")
    for label, x, fitter, used in candidates:
        cells = []
        for splitter, groups in (
            (LeaveOneOut(), None),
            (LeaveOneGroupOut(), prefixes[used]),
            (LeaveOneGroupOut(), heads[used]),
        ):
            value, n, coverage = cross_validate(x[used], rt[used], heads[used], fitter, splitter, groups)
            cells.append(f"{value:6.3f} ({n:2d}) {coverage:4.0%}" if n else f"{'n/a':>16s}")
        print(f"{label:46s} {cells[0]:>16s} {cells[1]:>16s} {cells[2]:>16s}")

    result = run_file(args.data)
    m, model = result.metrics, result.models[0]
    print("\nthe engine as shipped (anchor screening, closed-form folds, calibrated intervals):")
    print(
        f"  RMSEP LOO {m['loo_rmsep']:.3f} ({m['n_anchors_used']}), LOPO {m['lopo_rmsep']:.3f} "
        f"({m['lopo_n_scored']}, coverage {m['lopo_coverage']:.0%}), LOHGO {m['lohgo_rmsep']:.3f} "
        f"({m['lohgo_n_scored']}, coverage {m['lohgo_coverage']:.0%}), every confirmed anchor "
        f"{m['loo_rmsep_all_anchors']:.3f} min; Q² {m['loo_q2']:.4f}"
    )
    for fold, label in (("lopo", "prefix"), ("lohgo", "head group")):
        unscored = ", ".join(f"{g['group']} {g['n_unscored']} of {g['n_anchors']}" for g in model[f"{fold}_unscored"])
        print(f"  anchors a {label} fold cannot predict (a term only their group carries): {unscored or 'none'}")
    print("  variance components (SD in min):")
    for component in model["variance_components"]:
        print(f"    {component['component']:48s} {component['sd']:.3f}  (n {component['n']}) {component['method']}")
    print("  main peaks of names without an anchor inside their 95 % interval:")
    for category, figures in model["main_peak_coverage"].items():
        coverage = "–" if figures["coverage"] is None else f"{figures['coverage']:.0%}"
        print(f"    {category:34s} {figures['n']:4d}  {coverage}")
    s = result.summary
    print(
        f"  outliers {s['counts']['outlier']}: {s['identity_outliers']} identities, "
        f"{s['extra_peak_outliers']} extra peaks, {s['anchors_inconsistent']} anchors "
        "(version 0.1.0 called 116 of 231 assessed peaks)"
    )


if __name__ == "__main__":
    main()
