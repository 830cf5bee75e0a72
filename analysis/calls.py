"""Rule 1, the calls: predict every peak with an honest interval and judge each name by its main peak.

Peaks sharing a name are one identity and, often, several isomers or a misassigned extra peak.
The largest peak of a name that is not an in-source fragment (its main peak) carries the
identity verdict; every other peak of the name is an extra peak, judged against the positions
its isomers could take. Anchors of the fit are judged by the fit without them.

Positions: an isomer series index k (0 = the anchors' first series of the head group). A head
group with anchors on two series has its own offset; the others borrow the pooled offset with
its between-head uncertainty (analysis.model). A main peak may be series a or b where the head
group's offset is learned, and is the anchors' series elsewhere; an extra peak may sit one
series before and up to two after. Each peak is judged at the position nearest its RT.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from analysis.crossval import HeldOut
from analysis.model import (
    FittedModel,
    benjamini_hochberg,
    judge_anchors,
    predict_at,
    predictable,
    t_quantile,
    t_two_sided_p,
)
from analysis.variance import (
    AmbiguousPrefix,
    Component,
    Side,
    ambiguous_prefixes,
    anchor_ranges,
    calibrate,
    calibrate_by_group,
    extrapolation_distances,
    per_unit_effect,
)

WELL_ANCHORED = 3  # anchors a prefix needs for its new species to count as well covered
MAIN_POSITIONS_LEARNED = (0, 1)
EXTRA_POSITIONS_LEARNED = (0, 1)
EXTRA_POSITIONS_BORROWED = (-1, 0, 1)
VARIANCE_COLUMNS = (
    "var_residual",
    "var_parameter",
    "var_head",
    "var_prefix",
    "var_species",
    "var_extrapolation",
    "var_isomer",
    "var_series",
)


def is_in(values: np.ndarray, members) -> np.ndarray:
    """Membership of each value in a set of labels (hashing: numpy's isin compares object arrays pairwise)."""
    return pd.Series(values, dtype=object).isin(set(members)).to_numpy()


def main_peaks(frame: pd.DataFrame, members: np.ndarray) -> np.ndarray:
    """Frame position of each row's name's main peak (largest volume, then earlier RT, then row); −1 if none."""
    main = np.full(len(frame), -1, dtype=np.int64)
    positions = np.flatnonzero(members)
    if not len(positions):
        return main
    names = frame["canonical_name"].to_numpy(dtype=object)[positions].astype(str)
    volume = frame["volume"].to_numpy(dtype=float)[positions]
    rt = frame["rt"].to_numpy(dtype=float)[positions]
    rows = frame["row"].to_numpy()[positions]
    order = np.lexsort((rows, rt, -volume, names))
    sorted_names = names[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_names[1:] != sorted_names[:-1]
    group = np.cumsum(first) - 1
    leaders = positions[order[first]]
    main[positions[order]] = leaders[group]
    return main


def modification_prefix(frame: pd.DataFrame) -> np.ndarray:
    """Head group plus modifications, without the isomer letter: the unit a modification effect transfers between."""
    codes, unique = pd.factorize(frame["prefix"].fillna("").to_numpy(dtype=object))
    heads = frame["head"].fillna("").to_numpy(dtype=object)
    first = np.zeros(len(unique), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]  # a prefix determines its head group
    keys = np.array(
        [heads[i] + prefix[len(heads[i]) :].lstrip("abc").lstrip("α") for i, prefix in zip(first, unique, strict=True)],
        dtype=object,
    )
    return keys[codes] if len(codes) else np.empty(0, dtype=object)


@dataclasses.dataclass
class Calls:
    """Per-row outcome of Rule 1 (arrays aligned with the frame) and the model-level calibration."""

    predicted: np.ndarray
    pi_low: np.ndarray
    pi_high: np.ndarray
    studentized: np.ndarray
    p_value: np.ndarray
    q_value: np.ndarray
    variances: dict[str, np.ndarray]
    position: np.ndarray  # series index the row was judged at (0-based); −99 where not judged
    outside: np.ndarray
    outlier: np.ndarray
    main: np.ndarray  # frame position of the row's main peak (−1: no name group)
    in_fit: np.ndarray
    loo_judged: np.ndarray  # anchors of the fit judged by the fit without them
    sole_support: np.ndarray
    unpredictable: np.ndarray  # members the model cannot predict (a term no anchor varies)
    no_isomer_position: np.ndarray  # extra peaks with no isomer offset learned anywhere
    extrapolation: dict[Side, np.ndarray]
    uncalibrated_sides: dict[Side, float]  # sides whose width is assumed, with that per-unit width
    prefix_anchored: np.ndarray
    head_anchored: np.ndarray
    ambiguous: list[AmbiguousPrefix]
    components: list[Component]
    prefix_fallback: str | None  # how the prefix variance was obtained when groups were too few
    prefix_groups: list[dict]  # the centres the prefix variance was calibrated on
    isomer_offset: np.ndarray  # per row: the isomer offset of its head group (NaN: none known)
    isomer_offset_sd: np.ndarray
    isomer_learned: np.ndarray  # bool: learned for this head group from its own anchors
    calibration_rows: np.ndarray  # main peaks of names without an anchor that calibrated something

    def component(self, name: str) -> float:
        """A calibrated variance component by name (0 if absent)."""
        return next((c.variance for c in self.components if c.name == name), 0.0)

    @property
    def total_variance(self) -> np.ndarray:
        """The variance behind the test (the series ambiguity widens the interval as a span instead)."""
        return sum(v for k, v in self.variances.items() if k != "var_series")


def _group_component(name, rows, keys, residual, carried_variance, held, rt, species_variance, what):
    """A between-group component calibrated on one centre per group: peaks' medians and held-out folds."""
    labels, inverse = np.unique(keys[rows].astype(str), return_inverse=True)
    centres = [float(np.median(residual[rows][inverse == k])) for k in range(len(labels))]
    carried = [
        float(np.mean(carried_variance[rows][inverse == k])) / int(np.sum(inverse == k)) for k in range(len(labels))
    ]
    for fold in held:
        errors = rt[fold.positions] - fold.predicted
        centres.append(float(np.mean(errors)))
        carried.append(float(np.mean(fold.fit_variance + species_variance)) / len(errors))
    component, kept = calibrate_by_group(
        name,
        np.asarray(centres),
        np.asarray(carried),
        f"{what} ({len(labels)} without an anchor, by the median residual of their names' main peaks; "
        f"{len(held)} of the anchors, by their mean error when left out)",
    )
    return component, kept


def call_rows(
    frame: pd.DataFrame,
    members: np.ndarray,
    design: np.ndarray,
    series_index: np.ndarray,
    model: FittedModel,
    *,
    lopo: list[HeldOut],
    lohgo: list[HeldOut],
    pi_level: float,
    alpha: float,
) -> Calls:
    n = len(frame)
    rt = frame["rt"].to_numpy(dtype=float)
    heads = frame["head"].fillna("").to_numpy(dtype=object)
    names = frame["canonical_name"].fillna("").to_numpy(dtype=object)
    anchor = frame["anchor"].to_numpy(dtype=bool) & frame["valid"].to_numpy(dtype=bool)
    isomer = frame["isomer"].fillna("").to_numpy(dtype=object)
    prefix_keys = modification_prefix(frame)
    labels = np.column_stack([heads, prefix_keys])
    nan = np.full(n, np.nan)

    main = main_peaks(frame, members)
    is_main = members & (main == np.arange(n))
    in_fit = np.zeros(n, dtype=bool)
    in_fit[model.anchors] = True
    anchored_names = set(names[members & anchor].tolist())
    fit_prefixes = set(prefix_keys[model.anchors].tolist())
    fit_heads = model.anchor_heads or set(heads[model.anchors].tolist())
    prefix_anchored = is_in(prefix_keys, fit_prefixes)
    head_anchored = is_in(heads, fit_heads)

    targets = np.flatnonzero(members & ~in_fit)
    ok = np.zeros(n, dtype=bool)
    ok[targets] = predictable(model, design[targets])
    unpredictable = members & ~in_fit & ~ok
    judged = np.flatnonzero(ok)

    # Isomer offset each row's head group has (learned or borrowed), for positions and reports.
    offset = np.full(n, np.nan)
    offset_sd = np.full(n, np.nan)
    learned = np.zeros(n, dtype=bool)
    for head in set(heads[members].tolist()):
        known = model.series.offset(head)
        if known is None:
            continue
        where = heads == head
        offset[where], offset_sd[where] = known
        learned[where] = head in model.series.learned

    # Candidate positions of each judged row.
    letter = np.array([{"a": 0, "b": 1, "c": 2}.get(x, -1) for x in isomer])
    candidates: list[tuple[int, ...]] = []
    for i in judged:
        if letter[i] >= 0:
            base = letter[i]
            candidates.append((base,) if is_main[i] else tuple(range(base, base + 3)))
        elif np.isnan(offset[i]):
            candidates.append((0,) if is_main[i] else ())
        elif is_main[i]:
            candidates.append(MAIN_POSITIONS_LEARNED)
        else:
            candidates.append(EXTRA_POSITIONS_LEARNED if learned[i] else EXTRA_POSITIONS_BORROWED)

    # An extra peak of a table whose anchors show no second isomer anywhere has no known position.
    no_position = np.array([i for i, c in zip(judged, candidates, strict=True) if not c], dtype=np.int64)
    keep_rows = [k for k, c in enumerate(candidates) if c]
    judged = judged[keep_rows]
    candidates = [candidates[k] for k in keep_rows]
    ok[no_position] = False
    ambiguous = ambiguous_prefixes(model, design, heads, prefix_keys, names, judged)
    # Every reading of the ambiguous prefixes a row depends on: each as read, or as series b.
    readings = np.zeros((n, 1))
    for reading in ambiguous:
        readings = np.concatenate([readings, readings + reading.shift[:, None]], axis=1)
    var_series = np.zeros(n)
    for reading in ambiguous:
        var_series += (reading.shift / 2) ** 2

    # Fit prediction at every candidate position and reading; keep the nearest. The interval
    # spans every reading at that position (the ambiguity enters it), the test uses the nearest.
    position = np.full(n, -99, dtype=np.int64)
    shift = np.zeros(n)
    span_low = np.zeros(n)
    span_high = np.zeros(n)
    fit_parts = {name: nan.copy() for name in ("predicted", "var_residual", "var_parameter", "var_head", "var_isomer")}
    if len(judged):
        best_distance = np.full(len(judged), np.inf)
        widest = max(len(c) for c in candidates)
        for slot in range(widest):
            k = np.array([c[slot] if slot < len(c) else c[-1] for c in candidates])
            prediction = predict_at(model, design[judged], labels[judged], k)
            for r in range(readings.shape[1]):
                mean = prediction.predicted + readings[judged, r]
                distance = np.abs(rt[judged] - mean)
                better = distance < best_distance - 1e-12
                best_distance[better] = distance[better]
                chosen = judged[better]
                position[chosen] = k[better]
                shift[chosen] = readings[chosen, r]
                fit_parts["predicted"][chosen] = mean[better]
                for part in ("var_residual", "var_parameter", "var_head", "var_isomer"):
                    fit_parts[part][chosen] = getattr(prediction, part)[better]
        span_low = np.min(readings, axis=1) - shift
        span_high = np.max(readings, axis=1) - shift

    # What the anchors cannot know, calibrated on the main peaks of names without an anchor.
    ranges = anchor_ranges(model)
    distances = extrapolation_distances(design, model.columns, ranges)
    extrapolated = np.zeros(n, dtype=bool)
    for d in distances.values():
        extrapolated |= d > 0
    residual = rt - fit_parts["predicted"]
    fit_variance = (
        fit_parts["var_residual"] + fit_parts["var_parameter"] + fit_parts["var_head"] + fit_parts["var_isomer"]
    )
    # Calibrated on main peaks of names without an anchor, judged at a position whose isomer
    # offset is known (a borrowed offset's assumed uncertainty would swamp what is measured).
    calibration = ok & is_main & ~is_in(names, anchored_names) & (fit_parts["var_isomer"] == 0)
    used_for_calibration = np.zeros(n, dtype=bool)
    components: list[Component] = []

    species_rows = calibration & prefix_anchored & head_anchored & ~extrapolated
    species = calibrate(
        "species",
        residual[species_rows],
        fit_variance[species_rows],
        "main peaks of names without an anchor in prefixes with anchors",
    ) or Component(
        "species",
        0.0,
        int(species_rows.sum()),
        "too few main peaks of names without an anchor in prefixes with anchors to calibrate; the "
        "anchors' own scatter is taken to hold for new species",
        False,
    )
    components.append(species)
    if species.calibrated:
        used_for_calibration |= species_rows
    var_species = np.where(ok, species.variance, 0.0)
    # A prefix with one or two anchors pins its own composition effects far less than one with
    # many: its new species get their own, separately calibrated component where the peaks allow.
    keys, counts = np.unique(prefix_keys[model.anchors].astype(str), return_counts=True)
    support = dict(zip(keys.tolist(), counts.tolist(), strict=True))
    prefix_support = np.array([support.get(k, 0) for k in prefix_keys.tolist()])
    thin = ok & prefix_anchored & (prefix_support < WELL_ANCHORED)
    thin_rows = species_rows & thin
    species_of_left_out = np.full(n, species.variance)  # an anchor judged without itself
    thin_species = calibrate(
        "species, prefix with 1–2 anchors",
        residual[thin_rows],
        fit_variance[thin_rows],
        f"main peaks of names without an anchor in prefixes with fewer than {WELL_ANCHORED} anchors",
    )
    if thin_species is not None and thin_species.variance > species.variance:
        components.append(thin_species)
        var_species = np.where(thin, thin_species.variance, var_species)
        # Left out, an anchor's prefix has one anchor fewer.
        species_of_left_out = np.where(prefix_support - 1 < WELL_ANCHORED, thin_species.variance, species.variance)

    # A head group without anchors: one centre per such head group from its names' main peaks,
    # and one per head group of the anchors predicted from a fold without it.
    head_rows = calibration & ~head_anchored & ~extrapolated
    without_head = fit_parts["var_residual"] + fit_parts["var_parameter"] + fit_parts["var_isomer"] + var_species
    head, _ = _group_component(
        "head group",
        head_rows,
        heads,
        residual,
        without_head,
        [h for h in lohgo if len(h.positions)],
        rt,
        species.variance,
        "head groups",
    )
    if head is None:
        head = Component(
            "head group",
            float(model.fit.tau2),
            len(model.fit.groups),
            f"REML between-head-group variance over {len(model.fit.groups)} head groups with anchors "
            "(too few head groups to calibrate it on the peaks)",
            True,
        )
    else:
        used_for_calibration |= head_rows
    components.append(head)
    unseen_head = ok & ~head_anchored
    fit_parts["var_head"] = np.where(unseen_head, head.variance, np.where(ok, 0.0, fit_parts["var_head"]))
    fit_variance = (
        fit_parts["var_residual"] + fit_parts["var_parameter"] + fit_parts["var_head"] + fit_parts["var_isomer"]
    )

    needs_prefix = ok & ~prefix_anchored & (head_anchored | (prefix_keys != heads))
    prefix_rows = calibration & ~prefix_anchored & head_anchored & ~extrapolated
    # One centre per prefix: its names' main peaks (median residual), and every prefix of the
    # anchors whose left-out fold kept its head group (mean leave-one-prefix-out error).
    labels, inverse = np.unique(prefix_keys[prefix_rows].astype(str), return_inverse=True)
    peak_residuals, peak_carried = residual[prefix_rows], (fit_variance + var_species)[prefix_rows]
    centres = [float(np.median(peak_residuals[inverse == k])) for k in range(len(labels))]
    carried = [float(np.mean(peak_carried[inverse == k])) / int(np.sum(inverse == k)) for k in range(len(labels))]
    sources = [f"main peaks of {label}" for label in labels]
    for held in lopo:
        if len(held.positions) and not held.head_lost:
            errors = rt[held.positions] - held.predicted
            centres.append(float(np.mean(errors)))
            carried.append(float(np.mean(held.fit_variance + species.variance)) / len(errors))
            sources.append(f"anchors of {held.group}, left out")
    prefix, kept_groups = calibrate_by_group(
        "prefix",
        np.asarray(centres),
        np.asarray(carried),
        f"prefixes ({len(labels)} without an anchor, by the median residual of their names' main peaks; "
        f"{len(centres) - len(labels)} of the anchors, by their mean error when left out)",
    )
    prefix_fallback = None
    if prefix is None:
        reml = model.fit.factor("prefix")
        prefix = Component(
            "prefix",
            float(reml.tau2 if reml else model.fit.tau2),
            0,
            f"only {len(centres)} prefixes to calibrate it on (main peaks in prefixes without an anchor, "
            "and prefixes of the anchors that can be left out with their head group kept): "
            + ("the anchors' REML prefix variance" if reml else "assumed as large as the head-group variance"),
            reml is not None,
        )
        prefix_fallback = "REML" if reml else "head-group variance"
    else:
        used_for_calibration |= prefix_rows & is_in(prefix_keys, labels[kept_groups[: len(labels)]])
    prefix_groups = [
        {"source": source, "centre": round(c, 4), "kept": bool(k)}
        for source, c, k in zip(sources, centres, kept_groups, strict=True)
    ]
    components.append(prefix)
    var_prefix = np.where(needs_prefix, prefix.variance, 0.0)

    var_extrapolation = np.zeros(n)
    uncalibrated: dict[Side, float] = {}
    base_variance = fit_variance + var_species + var_prefix
    for side in sorted(distances, key=lambda s: (s.term, s.above)):
        d = distances[side]
        only_here = d > 0
        for other, e in distances.items():
            if other != side:
                only_here &= e == 0
        rows = calibration & only_here
        component = calibrate(
            f"extrapolation: {side.label}",
            residual[rows] / d[rows] if rows.any() else np.zeros(0),
            base_variance[rows] / d[rows] ** 2 if rows.any() else np.zeros(0),
            f"main peaks with {side.label} (per unit beyond the range)",
        )
        if component is None:
            width = per_unit_effect(model, side, ranges)
            component = Component(
                f"extrapolation: {side.label}",
                width**2,
                int(rows.sum()),
                f"too few main peaks ({int(rows.sum())}) to calibrate; assumed as large as the term's "
                f"own effect per unit ({width:.2f} min)",
                False,
            )
            uncalibrated[side] = width
        else:
            used_for_calibration |= rows
        components.append(component)
        var_extrapolation += np.where(ok, component.variance * d**2, 0.0)

    variances = {
        "var_residual": fit_parts["var_residual"],
        "var_parameter": fit_parts["var_parameter"],
        "var_head": fit_parts["var_head"],
        "var_prefix": np.where(ok, var_prefix, np.nan),
        "var_species": np.where(ok, var_species, np.nan),
        "var_extrapolation": np.where(ok, var_extrapolation, np.nan),
        "var_isomer": np.where(ok, fit_parts["var_isomer"], np.nan),
    }
    predicted = fit_parts["predicted"]
    df = model.df
    half = t_quantile(0.5 + pi_level / 2, df)

    # Anchors of the fit: leave-one-out prediction, residual and coefficient variance only.
    judgement = judge_anchors(model, rt)
    a = judgement.anchors[judgement.testable]
    predicted[a] = judgement.predicted[judgement.testable]
    position[a] = series_index[a].astype(np.int64)
    variances["var_residual"][a] = judgement.var_residual[judgement.testable]
    variances["var_parameter"][a] = judgement.var_parameter[judgement.testable]
    for name in VARIANCE_COLUMNS[2:]:
        if name in variances:
            variances[name][a] = 0.0
    # Left out, an anchor is a species the remaining anchors do not have, unless its name has
    # another anchor in the fit (an isomer pair shares its composition).
    fit_names, fit_counts = np.unique(names[model.anchors].astype(str), return_counts=True)
    single = fit_counts[np.searchsorted(fit_names, names[a].astype(str))] == 1
    variances["var_species"][a[single]] = species_of_left_out[a[single]]
    sole_support = np.zeros(n, dtype=bool)
    sole_support[judgement.anchors[~judgement.testable]] = True
    loo_judged = np.zeros(n, dtype=bool)
    loo_judged[a] = True

    total = sum(variances.values())
    sd = np.sqrt(total)
    # Reported with the rest, the ambiguity enters the interval as its span, not as a variance.
    variances["var_series"] = np.where(ok, var_series, np.where(loo_judged, 0.0, np.nan))
    anchor_df = np.where(loo_judged, df - 1, df)
    with np.errstate(invalid="ignore", divide="ignore"):
        studentized = (rt - predicted) / sd
        p_value = np.where(np.isfinite(studentized), t_two_sided_p(studentized, anchor_df), np.nan)
    half_width = np.where(loo_judged, t_quantile(0.5 + pi_level / 2, max(df - 1, 1.0)), half) * sd
    pi_low, pi_high = predicted - half_width + span_low, predicted + half_width + span_high

    q_value = np.full(n, np.nan)
    tested = members & np.isfinite(p_value)
    if tested.any():
        q_value[tested] = benjamini_hochberg(p_value[tested])
    outside = (rt < pi_low) | (rt > pi_high)
    outlier = members & outside & (q_value <= alpha)

    return Calls(
        predicted=predicted,
        pi_low=pi_low,
        pi_high=pi_high,
        studentized=studentized,
        p_value=p_value,
        q_value=q_value,
        variances=variances,
        position=position,
        outside=outside,
        outlier=outlier,
        main=main,
        in_fit=in_fit,
        loo_judged=loo_judged,
        sole_support=sole_support,
        unpredictable=unpredictable,
        no_isomer_position=np.isin(np.arange(n), no_position),
        extrapolation=distances,
        uncalibrated_sides=uncalibrated,
        prefix_anchored=prefix_anchored,
        head_anchored=head_anchored,
        ambiguous=ambiguous,
        components=components,
        prefix_fallback=prefix_fallback,
        prefix_groups=prefix_groups,
        isomer_offset=offset,
        isomer_offset_sd=offset_sd,
        isomer_learned=learned,
        calibration_rows=used_for_calibration,
    )
