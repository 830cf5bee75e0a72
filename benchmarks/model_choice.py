"""Which RT model? Cross-validated error of candidate model families on the real sample.

Every family is fitted on the same anchors: the MS/MS-confirmed peaks that Rule 5 does not
call in-source fragments. LOO is leave-one-out over anchors (closed form); LOHGO leaves
out a whole head group at a time and predicts it from the others.

    python benchmarks/model_choice.py [--data ../shared/data/porcine_brain_gangliosides.csv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.design import DESIGN_COLUMNS, choose_columns, design_matrix, estimable
from analysis.fragments import find_fragments
from analysis.isomers import assign_series
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


def loo_and_lohgo(x: np.ndarray, y: np.ndarray, heads: np.ndarray, groups: np.ndarray | None):
    """LOO RMSEP (closed form) and LOHGO RMSEP for one design; groups=None means plain least squares."""
    single = np.array(["all"] * len(y))
    fit = fit_random_intercept(x, groups if groups is not None else single, y)
    scorable = fit.leverage < 1 - 1e-8  # an anchor alone in its prefix has no leave-one-out prediction
    loo = fit.resid[scorable] / (1 - fit.leverage[scorable])
    errors = []
    for head in sorted(set(heads)):
        test, train = heads == head, heads != head
        choice = choose_columns(np.column_stack([np.ones(train.sum()), x[train][:, 1:]]))
        columns = choice.keep
        if train.sum() - len(columns) < 1:
            continue
        ok = estimable(x[train][:, columns], x[test][:, columns]) & estimable(x[train], x[test])
        if not ok.any():
            continue
        sub = fit_random_intercept(x[train][:, columns], (groups if groups is not None else single)[train], y[train])
        predicted, _ = sub.predict(x[test][ok][:, columns], (groups if groups is not None else single)[test][ok])
        errors.append(y[test][ok] - predicted)
    lohgo = np.concatenate(errors) if errors else np.zeros(0)
    lohgo_rmsep = float(np.sqrt(np.mean(lohgo**2))) if len(lohgo) else float("nan")
    return float(np.sqrt(np.mean(loo**2))), int(scorable.sum()), lohgo_rmsep, len(lohgo)


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
    _, series_index = assign_series(frame, members)
    design = design_matrix(frame, series_index)
    anchors = np.flatnonzero(members & frame["anchor"].to_numpy())
    all_anchors = np.flatnonzero(valid & frame["anchor"].to_numpy())
    rt = frame["rt"].to_numpy(float)
    heads = frame["head"].to_numpy(object)
    prefixes = frame["prefix"].to_numpy(object)

    def columns(names):
        chosen = choose_columns(design[anchors][:, [0, *[DESIGN_COLUMNS.index(n) for n in names]]])
        picked = [0, *[DESIGN_COLUMNS.index(n) for n in names]]
        return design[:, [picked[j] for j in chosen.keep]]

    log_p = np.column_stack([np.ones(len(frame)), frame["log_p"].to_numpy(float)])
    prefix_dummies = (prefixes[:, None] == np.array(sorted(set(prefixes[anchors])))[None, :]).astype(float)
    candidates = [
        ("Log P line, all confirmed anchors (legacy)", log_p, None, all_anchors),
        ("Log P line", log_p, None, anchors),
        ("Log P + per-prefix intercepts", np.column_stack([prefix_dummies, log_p[:, 1]]), None, anchors),
        ("composition", columns(COMPOSITION), None, anchors),
        ("composition + series", columns([*COMPOSITION, "series"]), None, anchors),
        ("composition + series + carbons²", columns([*COMPOSITION, "series", "carbons_sq"]), None, anchors),
        ("  + head-group random intercept (engine)", columns([*COMPOSITION, "series", "carbons_sq"]), "head", anchors),
        ("  + prefix random intercept instead", columns([*COMPOSITION, "series", "carbons_sq"]), "prefix", anchors),
    ]
    print(f"data: {args.data}")
    print(f"anchors: {len(all_anchors)} confirmed, {len(anchors)} after Rule 5 removed in-source fragments\n")
    print(
        f"{'model':42s} {'anchors':>7s} {'terms':>5s} {'LOO RMSEP':>10s} {'(scored)':>8s} "
        f"{'LOHGO RMSEP':>12s} {'(scored)':>8s}"
    )
    for label, x, grouping, used in candidates:
        groups = None if grouping is None else (heads if grouping == "head" else prefixes)[used]
        loo, loo_n, lohgo, lohgo_n = loo_and_lohgo(x[used], rt[used], heads[used], groups)
        print(f"{label:42s} {len(used):7d} {x.shape[1]:5d} {loo:10.3f} {loo_n:8d} {lohgo:12.3f} {lohgo_n:8d}")

    result = run_file(args.data)
    metrics = result.metrics
    print("\nthe engine as shipped (anchor screening on):")
    print(
        f"  anchors used {metrics['n_anchors_used']}, down-weighted {result.models[0]['n_downweighted']}; "
        f"LOO RMSEP {metrics['loo_rmsep']:.3f} min over the anchors used, "
        f"{metrics['loo_rmsep_all_anchors']:.3f} min counting the down-weighted ones; Q² {metrics['loo_q2']:.4f}, "
        f"LOHGO RMSEP {metrics['lohgo_rmsep']:.3f} min; residual SD {metrics['residual_sd']:.3f}, "
        f"head-group SD {metrics['head_group_sd']:.3f}; rows with a finite PI {metrics['coverage']:.3f}"
    )


if __name__ == "__main__":
    main()
