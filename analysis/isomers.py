"""Rules 2–3: isomer groups (peaks sharing a full name), their series, and the offsets between them."""

from __future__ import annotations

import numpy as np
import pandas as pd

ISOMER_ORDINAL = {"": 0, "a": 0, "b": 1, "c": 2}


def rank_series(frame: pd.DataFrame, members: np.ndarray) -> np.ndarray:
    """1-based series of each member peak within its name by RT order (0 for non-members).

    Ties in RT are broken by volume (larger first), then by row number.
    """
    series = np.zeros(len(frame), dtype=np.int64)
    positions = np.flatnonzero(members)
    if not len(positions):
        return series
    names = frame["canonical_name"].to_numpy(dtype=object)[positions].astype(str)
    order = np.lexsort(
        (
            frame["row"].to_numpy()[positions],
            -frame["volume"].to_numpy(dtype=float)[positions],
            frame["rt"].to_numpy(dtype=float)[positions],
            names,
        )
    )
    ordered = names[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = ordered[1:] != ordered[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
    series[positions[order]] = np.arange(len(order)) - first + 1
    return series


def anchor_series(frame: pd.DataFrame, anchors: np.ndarray) -> np.ndarray:
    """The model's series index of each anchor: its RT rank among the anchors of its name (0-based).

    Only the name's anchors count, so a small earlier peak that is not an anchor cannot shift
    an anchor to the second series. An isomer letter the input gave adds its ordinal (a 0,
    b 1, c 2), so GD1a/GD1b anchors keep their separation when named.
    """
    index = np.zeros(len(frame), dtype=float)
    mask = np.zeros(len(frame), dtype=bool)
    mask[anchors] = True
    rank = rank_series(frame, mask)
    letters = frame["isomer"].fillna("").map(ISOMER_ORDINAL).fillna(0).to_numpy()
    index[mask] = rank[mask] - 1 + letters[mask]
    return index


ISOMER_COLUMNS = [
    "isomer_group",
    "series_from",
    "series_to",
    "row_from",
    "row_to",
    "rt_from",
    "rt_to",
    "offset",
    "expected_offset",
    "tolerance",
    "agrees",
    "offset_source",
]


def isomer_report(
    frame: pd.DataFrame,
    members: np.ndarray,
    series: np.ndarray,
    *,
    offsets: dict[str, tuple[float, float]],
    scatter_sd: float,
    quantile: float,
) -> pd.DataFrame:
    """One line per pair of consecutive series in a name: the RT offset and whether it fits.

    `offsets` maps a head group to its learned isomer offset and standard error; a head group
    without one is reported as "no learned offset" and `agrees` is left empty, because the
    spacing of one head group's isomers says nothing exact about another's. `scatter_sd` is the
    scatter of one peak about its prediction; an observed offset is the difference of two.
    """
    positions = np.flatnonzero(members)
    names = frame["canonical_name"].to_numpy(dtype=object)[positions].astype(str)
    order = np.lexsort((series[positions], names))
    positions, names = positions[order], names[order]
    pair = np.flatnonzero(names[1:] == names[:-1])
    before, after = positions[pair], positions[pair + 1]
    rt = frame["rt"].to_numpy(dtype=float)
    rows = frame["row"].to_numpy()
    table = pd.DataFrame(
        {
            "isomer_group": names[pair + 1],
            "series_from": series[before],
            "series_to": series[after],
            "row_from": rows[before],
            "row_to": rows[after],
            "rt_from": rt[before],
            "rt_to": rt[after],
        }
    )
    heads = frame["head"].to_numpy(dtype=object)[after]
    table["offset"] = (table["rt_to"] - table["rt_from"]).round(6)
    expected = np.array([offsets.get(h, (np.nan, np.nan))[0] for h in heads], dtype=float)
    se = np.array([offsets.get(h, (np.nan, np.nan))[1] for h in heads], dtype=float)
    tolerance = quantile * np.sqrt(2 * scatter_sd**2 + se**2)
    table["expected_offset"] = np.round(expected, 6)
    table["tolerance"] = np.round(tolerance, 6)
    agrees = pd.array((table["offset"].to_numpy() - expected).__abs__() <= tolerance, dtype="boolean")
    agrees[np.isnan(expected)] = pd.NA
    table["agrees"] = agrees
    table["offset_source"] = [
        f"learned for {h} from its anchors" if h in offsets else f"no learned offset for {h}" for h in heads
    ]
    return table[ISOMER_COLUMNS]
