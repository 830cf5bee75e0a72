"""The human-readable reason of every row: the verdict first, then what it rests on."""

from __future__ import annotations

import collections
import dataclasses
import functools
import math

import numpy as np

from analysis.design import MODIFICATION_TERMS, TERM_LABELS, column_label
from analysis.fragments import describe_loss
from analysis.names import COMPOSITION_UNITS

P_FLOOR = 1e-6  # below this, model error rather than sampling dominates a p-value
SERIES_LETTERS = "abcdefgh"
MOD_TERMS = MODIFICATION_TERMS


def format_p(value: float, symbol: str = "q") -> str:
    """ "q = 0.041", or "q < 1e-6" where model error rather than sampling decides."""
    if not np.isfinite(value):
        return f"{symbol} n/a"
    return f"{symbol} < 1e-6" if value < P_FLOOR else f"{symbol} = {value:.2g}"


def series_name(position: int, lettered: bool = True) -> str:
    """Series a/b/... where the head group's own anchors define them; else relative to the anchors."""
    if lettered and 0 <= position < len(SERIES_LETTERS):
        return f"series {SERIES_LETTERS[position]}"
    if position == 0:
        return "the anchors' series"
    steps = abs(position)
    return f"{steps} series {'after' if position > 0 else 'before'} the anchors'"


@dataclasses.dataclass
class Support:
    """How many anchors of the fit stand behind a row's prefix, head group and modifications."""

    prefix_count: collections.Counter
    head_count: collections.Counter
    mod_sources: dict[str, collections.Counter]  # modification -> prefix -> anchors carrying it

    @classmethod
    def of(cls, frame, anchors: np.ndarray, prefix_keys: np.ndarray) -> Support:
        heads = frame["head"].to_numpy(dtype=object)[anchors]
        keys = prefix_keys[anchors]
        sources = {}
        for term in MOD_TERMS:
            carrying = frame[term].to_numpy()[anchors] > 0
            sources[term] = collections.Counter(keys[carrying].tolist())
        return cls(collections.Counter(keys.tolist()), collections.Counter(heads.tolist()), sources)

    def describe(self, key: str, head: str, mods: tuple[int, ...]) -> str:
        """ "prefix GM1+dHex: 0 anchors; dHex learned from GD1+dHex (3 anchors)"; mods in MOD_TERMS order."""
        if key == head:
            parts = [f"head group {head}: {_anchors(self.head_count.get(head, 0))}"]
        else:
            parts = [f"prefix {key}: {_anchors(self.prefix_count.get(key, 0))}"]
            parts.append(f"head group {head}: {_anchors(self.head_count.get(head, 0))}")
        for term, count in zip(MOD_TERMS, mods, strict=True):
            if not count:
                continue
            sources = self.mod_sources.get(term, {})
            label = TERM_LABELS[term].lstrip("+")
            if not sources:
                parts.append(f"{label}: no anchor carries it")
            elif key not in sources:
                learned = ", ".join(f"{p} ({_anchors(c)})" for p, c in sorted(sources.items()))
                parts.append(f"{label} learned from {learned}")
        return "; ".join(parts)


def _anchors(count: int) -> str:
    return f"{count} anchor{'s' if count != 1 else ''}"


def fragment_reason(i, j, rows, names, rt, comp, is_anchor: bool, volume) -> str:
    """Why row i is an in-source fragment of row j."""
    lost = dict(zip(COMPOSITION_UNITS, (comp[j] - comp[i]).tolist(), strict=True))
    text = (
        f"in-source fragment of row {rows[j]} {names[j]} at {rt[j]:.3f} min "
        f"(ΔRT {rt[i] - rt[j]:+.3f} min, lost {describe_loss(lost)}, "
        f"precursor {volume[j] / volume[i]:.1f}× its volume); "
        f"its volume is added to row {rows[j]}"
    )
    if is_anchor:
        text += (
            "; MS/MS-confirmed, but a co-eluting larger peak explains it (its MS/MS spectrum is the "
            "fragment's), so it is not used as an anchor"
        )
    return text


def unestimable_reason(model, design: np.ndarray, i: int) -> str:
    from analysis.design import MIN_TERM_SUPPORT, SOFT_TERMS

    parts = []
    for j, (value, set_aside) in model.thin.items():
        if model.columns[j] in SOFT_TERMS:
            continue
        if design[i, j] != value:
            label = column_label(model.columns[j])
            parts.append(
                f"{label} = {design[i, j]:g} but only {len(set_aside)} anchor departs from "
                f"{label} = {value:g} (at least {MIN_TERM_SUPPORT} are needed)"
            )
    for j, value in model.choice.constant.items():
        if j in model.thin or model.columns[j] in SOFT_TERMS:
            continue
        if design[i, j] != value:
            label = column_label(model.columns[j])
            parts.append(f"{label} = {design[i, j]:g} but every anchor has {value:g}")
    if not parts:
        labels = ", ".join(column_label(model.columns[j]) for j in model.choice.confounded)
        parts.append(f"the anchors cannot separate the effects of {labels}")
    return "no prediction: " + "; ".join(parts) + ", so its effect on RT cannot be estimated"


def judged_reason(
    *,
    rt: float,
    predicted: float,
    low: float,
    high: float,
    q: float,
    level: str,
    outlier: bool,
    outside: bool,
    role: str,  # "anchor", "main", "extra"
    name: str,
    position: int,
    offset_text: str,
    lettered: bool = True,
) -> str:
    """The verdict sentence of a peak the model judged."""
    residual = rt - predicted
    direction = "later" if residual > 0 else "earlier"
    interval = f"{level} PI {low:.2f}–{high:.2f}"
    where = f" as {series_name(position, lettered)}{offset_text}" if position != 0 else ""
    series = series_name(position, lettered)
    if role == "anchor":
        if outlier:
            return (
                f"MS/MS-confirmed, but its RT is inconsistent with the model: {rt:.3f} min is {abs(residual):.2f} min "
                f"{direction} than the {predicted:.2f} predicted without it ({interval}, {format_p(q)}); check the "
                "peak and the MS/MS assignment"
            )
        verdict = "within" if not outside else "outside (not significant after false-discovery control)"
        return (
            f"anchor, judged by the model fitted without it{where}: RT {rt:.3f} min is {verdict} the {interval} "
            f"around {predicted:.2f}" + (f" ({format_p(q)})" if outside else "")
        )
    if role == "extra":
        if outlier:
            return (
                f"far from every plausible isomer position of {name}: RT {rt:.3f} min is {abs(residual):.2f} min "
                f"{direction} than the nearest ({series}{offset_text}, {predicted:.2f}; {interval}, "
                f"{format_p(q)})"
            )
        if outside:
            return (
                f"RT {rt:.3f} min is outside the {interval} of the nearest isomer position ({series}"
                f"{offset_text}, {predicted:.2f}) but not significant after false-discovery control ({format_p(q)})"
            )
        return f"RT {rt:.3f} min fits {name} at {series}{offset_text}: within the {interval} around {predicted:.2f}"
    if outlier:
        return (
            f"identity doubtful: RT {rt:.3f} min is {abs(residual):.2f} min {direction} than predicted "
            f"{predicted:.2f} for {name}{where} ({interval}, {format_p(q)})"
        )
    if outside:
        return (
            f"RT {rt:.3f} min is outside the {interval} around predicted {predicted:.2f}{where}, but not "
            f"significant after false-discovery control ({format_p(q)})"
        )
    return f"RT {rt:.3f} min is within the {interval} around predicted {predicted:.2f}{where}"


# ------------------------------------------------------------------ every row's reason


def row_reasons(stage, status: np.ndarray, range_notes: np.ndarray, excluded: np.ndarray) -> list[str]:
    """The reason of every row, in the frame's order (see the module docstring)."""
    frame, calls, model = stage.frame, stage.calls, stage.model
    rows = frame["row"].to_numpy().tolist()
    names = frame["name"].to_numpy(dtype=object).tolist()
    canonical = frame["canonical_name"].fillna("").to_numpy(dtype=object).tolist()
    heads = frame["head"].fillna("").to_numpy(dtype=object).tolist()
    lettered_name = (frame["isomer"].fillna("").to_numpy(dtype=object) != "").tolist()
    rt = frame["rt"].to_numpy(dtype=float)
    volume = frame["volume"].to_numpy(dtype=float)
    anchor = stage.anchor.tolist()
    invalid_reason = frame["invalid_reason"].to_numpy(dtype=object).tolist()
    comp = frame[list(COMPOSITION_UNITS)].to_numpy()
    mods = [tuple(m) for m in frame[list(MOD_TERMS)].to_numpy().tolist()]
    level = f"{stage.params.pi_level * 100:g}%"
    position_of_row = {r: i for i, r in enumerate(rows)}
    fragment_of = stage.fragments.fragment_of.tolist()
    main = stage.main.tolist()
    is_main = stage.is_main.tolist()
    extra = stage.extra.tolist()
    logp_notes = stage.logp.notes.tolist()
    oac_notes = stage.oac_notes
    status_list = status.tolist()
    range_list = range_notes.tolist()
    excluded_list = excluded.tolist()
    rt_list = rt.tolist()
    fitted = calls is not None
    if fitted:
        support = Support.of(frame, model.anchors, stage.prefix_keys)
        describe = functools.lru_cache(maxsize=None)(support.describe)
        screening_t = dict(zip(model.excluded.tolist(), model.screening_t.tolist(), strict=True))
        ambiguity = _ambiguity_notes(calls)
        predicted, low, high, q = (a.tolist() for a in (calls.predicted, calls.pi_low, calls.pi_high, calls.q_value))
        outside = calls.outside.tolist()
        position = calls.position.tolist()
        offset, offset_sd = calls.isomer_offset.tolist(), calls.isomer_offset_sd.tolist()
        learned = calls.isomer_learned.tolist()
        loo = calls.loo_judged.tolist()
        sole, no_position = calls.sole_support.tolist(), calls.no_isomer_position.tolist()
        anchored = (calls.prefix_anchored & calls.head_anchored).tolist()
        scatter = (calls.variances["var_residual"] + calls.variances["var_species"]).tolist()
        prefix_keys = stage.prefix_keys.tolist()
    reasons = []
    for i, s in enumerate(status_list):
        if s == "invalid":
            reasons.append(invalid_reason[i])
            continue
        if s == "fragment":
            j = position_of_row[fragment_of[i]]
            text = fragment_reason(i, j, rows, names, rt, comp, anchor[i], volume)
        elif s == "unassessed":
            if not fitted:
                text = f"no RT model: {model.reason}"
            elif sole[i]:
                text = "this anchor alone determines a model term, so it cannot be checked against the others"
            elif no_position[i]:
                text = (
                    f"extra peak of {canonical[i]} (main peak row {rows[main[i]]}): no anchors show a second isomer "
                    "series, so where this name's isomers elute is unknown and its RT is not judged"
                )
            else:
                text = unestimable_reason(model, stage.design, i)
        else:
            role = "anchor" if loo[i] else ("main" if is_main[i] else "extra")
            k = position[i]
            offset_text = ""
            if k != 0 and offset[i] == offset[i]:
                source = heads[i] if learned[i] else "pooled"
                offset_text = f" ({source} offset {offset[i]:+.2f} min per series)"
            text = judged_reason(
                rt=rt_list[i],
                predicted=predicted[i],
                low=low[i],
                high=high[i],
                q=q[i],
                level=level,
                outlier=s == "outlier",
                outside=outside[i],
                role=role,
                name=canonical[i],
                position=k,
                offset_text=offset_text,
                lettered=learned[i] or lettered_name[i],
            )
            if extra[i]:
                m = main[i]
                text = (
                    _extra_context(
                        rt_list[i] - rt_list[m],
                        rows[m],
                        volume[i] / volume[m],
                        canonical[i],
                        heads[i],
                        learned[i],
                        offset[i],
                        offset_sd[i],
                        scatter[i],
                    )
                    + "; "
                    + text
                )
                if status_list[m] == "outlier":
                    text += f"; the name's main peak (row {rows[m]}) is itself an identity outlier"
            if anchor[i] and excluded_list[i]:
                t = screening_t.get(i)
                text += "; MS/MS-confirmed but excluded from the fit by anchor screening" + (
                    f" (externally studentised residual {t:+.1f}, significant after Bonferroni correction)" if t else ""
                )
            if role != "anchor":
                if not anchored[i]:
                    text += f"; extrapolated: {describe(prefix_keys[i], heads[i], mods[i])}"
                if range_list[i]:
                    text += f"; extrapolated: {range_list[i]}"
                if i in ambiguity:
                    text += f"; {ambiguity[i]}"
        if logp_notes[i]:
            text += f"; Log P check: {logp_notes[i]}"
        if rows[i] in oac_notes:
            text += f"; O-acetylation {oac_notes[rows[i]]}"
        reasons.append(text)
    return reasons


def _extra_context(offset, main_row, fraction, name, head, learned, delta, sd, scatter) -> str:
    text = (
        f"extra peak of {name}: {abs(offset):.2f} min {'after' if offset > 0 else 'before'} its main peak "
        f"(row {main_row}), {fraction:.1%} of its volume"
    )
    if learned:
        steps = max(1, round(abs(offset) / delta)) if delta > 0 else 1
        tolerance = 1.96 * math.sqrt(2 * scatter + (steps * sd) ** 2)
        matches = abs(abs(offset) - steps * delta) <= tolerance and steps <= 2
        text += (
            f"; {'matches' if matches else 'does not match'} {head}'s isomer offset "
            f"({delta:.2f} ± {tolerance:.2f} min{' per series' if steps > 1 else ''})"
        )
    else:
        text += f"; no learned isomer offset for {head} (no head group of its own anchors shows two series)"
    return text


def _ambiguity_notes(calls) -> dict[int, str]:
    notes: dict[int, list[str]] = {}
    for reading in calls.ambiguous:
        for term, as_read, alternative in reading.effects:
            label = column_label(term).lstrip("+")
            text = (
                f"{label} is {as_read:+.2f} min if the {reading.prefix} anchors are the a isomers and "
                f"{alternative:+.2f} if they are the b isomers (they fit equally well): "
                "the interval spans both readings"
            )
            for i in np.flatnonzero(reading.shift != 0).tolist():
                notes.setdefault(i, []).append(text)
    return {i: "; ".join(texts) for i, texts in notes.items()}
