"""Rules 2–3: isomer groups (peaks sharing a full name) and their series by RT order."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

ISOMER_ORDINAL = {"": 0, "a": 0, "b": 1, "c": 2}


def assign_series(frame: pd.DataFrame, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based series of each member peak within its name by RT order, and the model's series index.

    The model's index is the RT rank (0-based) plus the ordinal of an isomer letter the
    input gave (a=0, b=1, c=2), so GD1a/GD1b peaks keep their separation when named.
    Ties in RT are broken by volume (larger first), then by row number.
    """
    n = len(frame)
    series = np.zeros(n, dtype=np.int64)
    index = np.zeros(n, dtype=float)
    sub = frame.loc[members, ["canonical_name", "rt", "volume", "row", "isomer"]]
    ordered = sub.assign(neg_volume=-sub["volume"]).sort_values(
        ["canonical_name", "rt", "neg_volume", "row"], kind="stable"
    )
    rank = ordered.groupby("canonical_name", sort=False).cumcount().to_numpy()
    positions = ordered.index.to_numpy()
    series[positions] = rank + 1
    index[positions] = rank + ordered["isomer"].map(ISOMER_ORDINAL).fillna(0).to_numpy()
    return series, index


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
]


def isomer_report(
    frame: pd.DataFrame,
    members: np.ndarray,
    series: np.ndarray,
    series_effect: tuple[float, float, float, int] | None,
    pi_level: float,
) -> pd.DataFrame:
    """One line per pair of consecutive series in a name: the RT offset and whether it fits.

    `series_effect` is (coefficient, its standard error, residual SD, residual df) of the
    model's series term, or None when the model has no series term; the offset then has
    nothing to be compared with and `agrees` is left empty.
    """
    sub = frame.loc[members, ["canonical_name", "rt", "row"]].assign(series=series[members])
    sub = sub.sort_values(["canonical_name", "series"], kind="stable")
    previous = sub.groupby("canonical_name", sort=False).shift(1)
    has_previous = previous["row"].notna().to_numpy()
    cur, prev = sub[has_previous], previous[has_previous]
    table = pd.DataFrame(
        {
            "isomer_group": cur["canonical_name"].to_numpy(),
            "series_from": prev["series"].astype(np.int64).to_numpy(),
            "series_to": cur["series"].to_numpy(),
            "row_from": prev["row"].astype(np.int64).to_numpy(),
            "row_to": cur["row"].to_numpy(),
            "rt_from": prev["rt"].to_numpy(),
            "rt_to": cur["rt"].to_numpy(),
        }
    )
    table["offset"] = (table["rt_to"] - table["rt_from"]).round(6)
    if series_effect is None or table.empty:
        table["expected_offset"] = np.nan
        table["tolerance"] = np.nan
        table["agrees"] = pd.array([pd.NA] * len(table), dtype="boolean")
        return table[ISOMER_COLUMNS]
    beta, se, sigma, df = series_effect
    # An observed offset is the difference of two peaks, each scattering by sigma about the model.
    tolerance = float(stats.t.ppf(0.5 + pi_level / 2, df) * np.sqrt(2 * sigma**2 + se**2))
    table["expected_offset"] = round(beta, 6)
    table["tolerance"] = round(tolerance, 6)
    table["agrees"] = (table["offset"] - beta).abs() <= tolerance
    return table.sort_values(["isomer_group", "series_to"], kind="stable").reset_index(drop=True)[ISOMER_COLUMNS]
