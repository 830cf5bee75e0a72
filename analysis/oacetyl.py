"""Rule 4: each O-acetylated species against its base (the same species with one OAc fewer)."""

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
    "series",
    "base_row",
    "base_name",
    "base_rt",
    "shift",
    "verdict",
]


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
    frame: pd.DataFrame, members: np.ndarray, series: np.ndarray, tolerance: float
) -> tuple[pd.DataFrame, np.ndarray]:
    """Pair O-acetylated peaks with base peaks; return the pair table and the flagged positions.

    Peaks pair series by series when both names have the same number of peaks. When the
    counts differ the series cannot be matched, so only the dominant (largest) peaks pair.
    """
    flagged = np.zeros(len(frame), dtype=bool)
    positions = np.flatnonzero(members)
    names = frame["canonical_name"].to_numpy(dtype=object)
    oac = frame["oac"].to_numpy()
    rows = frame["row"].to_numpy()
    rt = frame["rt"].to_numpy(dtype=float)
    volume = frame["volume"].to_numpy(dtype=float)
    # Peaks of each name in series order (series is already the RT rank within the name).
    by_name: dict[str, list[int]] = {}
    for i in positions[np.lexsort((series[positions], names[positions].astype(str)))]:
        by_name.setdefault(names[i], []).append(int(i))

    records = []

    def record(i: int, base: str, j: int | None, verdict: str | None = None) -> None:
        shift = round(float(rt[i] - rt[j]), 6) if j is not None else np.nan
        if verdict is None:
            if shift < -tolerance:
                flagged[i] = True
                verdict = f"inconsistent: elutes {-shift:.3f} min before its base (tolerance {tolerance:g})"
            else:
                verdict = f"consistent: elutes {shift:+.3f} min relative to its base"
        records.append(
            (
                int(rows[i]),
                names[i],
                float(rt[i]),
                int(series[i]),
                int(rows[j]) if j is not None else None,
                base,
                float(rt[j]) if j is not None else np.nan,
                shift,
                verdict,
            )
        )

    for name, peaks in by_name.items():
        if oac[peaks[0]] < 1:
            continue
        base = base_name(name)
        base_peaks = by_name.get(base)
        if base_peaks is None:
            for i in peaks:
                record(i, base, None, "no base peak")
        elif len(base_peaks) == len(peaks):
            for i, j in zip(peaks, base_peaks, strict=True):
                record(i, base, j)
        else:
            top, top_base = _dominant(peaks, volume), _dominant(base_peaks, volume)
            record(top, base, top_base)
            for i in peaks:
                if i != top:
                    record(
                        i,
                        base,
                        None,
                        f"not paired: {len(peaks)} OAc peaks but {len(base_peaks)} base peaks, "
                        "so series cannot be matched",
                    )
    table = pd.DataFrame(records, columns=OAC_COLUMNS)
    table["base_row"] = table["base_row"].astype("Int64")
    return table.sort_values("oac_row", kind="stable").reset_index(drop=True), flagged


def _dominant(peaks: list[int], volume: np.ndarray) -> int:
    """The largest peak (the earlier series on a tie; `peaks` is in series order)."""
    return max(peaks, key=lambda i: (volume[i], -peaks.index(i)))
