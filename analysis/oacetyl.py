"""Rule 4: each O-acetylated species against its base (the same species with one OAc fewer).

Main peaks pair first: the largest non-fragment peak of the O-acetylated name with the largest
of its base. Extra peaks pair within isomer series only when both names have the same number
of them, and never across more than a tenfold difference in volume (a rank alone does not make
a minor peak the partner of a major one). A base that Rule 5 attributed as an in-source fragment
is still the base: the pair is reported with a note, never as "no base peak".
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd

from analysis.names import parse_name

OAC_COLUMNS = [
    "oac_row",
    "oac_name",
    "oac_rt",
    "peak",
    "series",
    "base_row",
    "base_name",
    "base_rt",
    "shift",
    "verdict",
    "note",
]
MAX_RANK_PAIRING_RATIO = 10.0

_OAC_BEFORE_CHAIN = re.compile(r"\+(\d*)OAc\(")


def base_name(canonical: str) -> str:
    """Canonical name of the same species with one O-acetyl group fewer.

    OAc prints last among the modifications, right before the chain, so the common case is
    a text edit; anything else goes through the parser.
    """
    match = _OAC_BEFORE_CHAIN.search(canonical)
    if match:
        left = int(match[1] or 1) - 1
        token = "" if left == 0 else f"+{left if left > 1 else ''}OAc"
        return canonical[: match.start()] + token + canonical[match.end() - 1 :]
    parsed = parse_name(canonical)
    mods = tuple((mod, count - 1 if mod == "OAc" else count) for mod, count in parsed.mods)
    return dataclasses.replace(parsed, mods=tuple((m, c) for m, c in mods if c > 0)).canonical


def check_oacetylation(
    frame: pd.DataFrame,
    members: np.ndarray,
    *,
    is_fragment: np.ndarray,
    fragment_of: np.ndarray,
    series: np.ndarray,
    main: np.ndarray,
    tolerance: float,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Pair O-acetylated peaks with base peaks; return the pair table and the flagged positions."""
    n = len(frame)
    flagged = np.zeros(n, dtype=bool)
    names = frame["canonical_name"].to_numpy(dtype=object)
    oac = frame["oac"].to_numpy()
    rows = frame["row"].to_numpy()
    rt = frame["rt"].to_numpy(dtype=float)
    volume = frame["volume"].to_numpy(dtype=float)
    position_of_row = dict(zip(rows.tolist(), range(n), strict=True))

    peaks_of = _group_by_name(np.flatnonzero(members), names, rt)
    fragments_of = _group_by_name(np.flatnonzero(is_fragment), names, rt)
    main_list = main.tolist()

    # Each record: (OAc peak, main or extra, base name, base peak or -1, verdict if fixed, note).
    records: list[tuple[int, str, str, int, str | None, str]] = []
    paired: set[tuple[int, int]] = set()

    def record(i: int, role: str, base: str, j: int | None, verdict: str | None = None, note: str = "") -> None:
        if j is not None:
            paired.add((i, j))
        records.append((i, role, base, -1 if j is None else j, verdict, note))

    for name in sorted(n for n in peaks_of if oac[peaks_of[n][0]] >= 1):
        peaks = peaks_of[name]
        base = base_name(name)
        top = main_list[peaks[0]]
        base_peaks = peaks_of.get(base, [])
        extras = [i for i in peaks if i != top]
        if base_peaks:
            base_top = main_list[base_peaks[0]]
            record(top, "main", base, base_top)
            base_extras = [j for j in base_peaks if j != base_top]
            if extras and len(base_peaks) == len(peaks):
                for i, j in zip(extras, base_extras, strict=True):
                    ratio = max(volume[i], volume[j]) / min(volume[i], volume[j])
                    if ratio > MAX_RANK_PAIRING_RATIO:
                        record(
                            i,
                            "extra",
                            base,
                            None,
                            f"not paired: its series partner (row {rows[j]}) differs {ratio:.0f}× in volume",
                        )
                    else:
                        record(i, "extra", base, j)
            else:
                text = (
                    f"not paired: {len(peaks)} O-acetylated peaks but {len(base_peaks)} base peaks, so "
                    "series cannot be matched"
                )
                for i in extras:
                    record(i, "extra", base, None, text)
        elif base in fragments_of:
            j = max(fragments_of[base], key=lambda k: (volume[k], -rt[k]))
            precursor = position_of_row[int(fragment_of[j])]
            record(
                top,
                "main",
                base,
                j,
                note=f"the base peak was attributed as an in-source fragment of row {rows[precursor]} "
                f"{names[precursor]}",
            )
            for i in extras:
                record(i, "extra", base, None, "not paired: the only base peaks are in-source fragments")
        else:
            for i in peaks:
                record(i, "main" if i == top else "extra", base, None, "no base peak")
        # A base absorbed into one of these peaks by Rule 5 is a pair too: report it beside the rest.
        for j in fragments_of.get(base, []):
            precursor = position_of_row[int(fragment_of[j])]
            if precursor in peaks and (precursor, j) not in paired:
                record(
                    precursor,
                    "main" if precursor == top else "extra",
                    base,
                    j,
                    note="the base co-elutes and was absorbed as an in-source fragment of this larger "
                    "O-acetylated peak",
                )
    return _pair_table(records, rows, names, rt, series, tolerance, flagged), flagged


def _group_by_name(positions: np.ndarray, names: np.ndarray, rt: np.ndarray) -> dict[str, list[int]]:
    """Positions of each name's peaks in RT order."""
    if not len(positions):
        return {}
    labels = names[positions].astype(str)
    order = np.lexsort((rt[positions], labels))
    positions, labels = positions[order], labels[order]
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], cuts]).tolist()
    ends = np.concatenate([cuts, [len(labels)]]).tolist()
    ordered = positions.tolist()
    return {str(labels[a]): ordered[a:b] for a, b in zip(starts, ends, strict=True)}


def _pair_table(records, rows, names, rt, series, tolerance, flagged) -> pd.DataFrame:
    if not records:
        table = pd.DataFrame(columns=OAC_COLUMNS)
        table["base_row"] = table["base_row"].astype("Int64")
        table["series"] = table["series"].astype("Int64")
        return table
    i = np.array([r[0] for r in records], dtype=np.int64)
    j = np.array([r[3] for r in records], dtype=np.int64)
    has_base = j >= 0
    safe = np.where(has_base, j, 0)
    shift = np.where(has_base, np.round(rt[i] - rt[safe], 6), np.nan)
    early = has_base & (shift < -tolerance)
    flagged[i[early]] = True
    verdicts = []
    for (_, _, _, _, fixed, _), s, is_early in zip(records, shift.tolist(), early.tolist(), strict=True):
        if fixed is not None:
            verdicts.append(fixed)
        elif is_early:
            verdicts.append(f"inconsistent: elutes {-s:.3f} min before its base (tolerance {tolerance:g})")
        else:
            verdicts.append(f"consistent: elutes {s:+.3f} min relative to its base")
    base_row = pd.array(np.where(has_base, rows[safe], 0), dtype="Int64")
    base_row[~has_base] = pd.NA
    peak_series = pd.array(series[i], dtype="Int64")
    peak_series[series[i] == 0] = pd.NA
    table = pd.DataFrame(
        {
            "oac_row": rows[i],
            "oac_name": names[i],
            "oac_rt": rt[i],
            "peak": [r[1] for r in records],
            "series": peak_series,
            "base_row": base_row,
            "base_name": [r[2] for r in records],
            "base_rt": np.where(has_base, rt[safe], np.nan),
            "shift": shift,
            "verdict": verdicts,
            "note": [r[5] for r in records],
        },
        columns=OAC_COLUMNS,
    )
    return table.sort_values(["oac_row", "base_row"], kind="stable").reset_index(drop=True)
