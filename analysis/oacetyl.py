"""Rule 4: each O-acetylated species against its base (the same species with one OAc fewer)."""

from __future__ import annotations

import dataclasses

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


def base_name(canonical: str) -> str:
    """Canonical name of the same species with one O-acetyl group fewer."""
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
    peaks = frame.loc[members, ["row", "canonical_name", "rt", "volume", "oac"]].assign(
        series=series[members], position=np.flatnonzero(members)
    )
    acetylated = peaks[peaks["oac"] >= 1].copy()
    if acetylated.empty:
        return pd.DataFrame(columns=OAC_COLUMNS), flagged
    names = acetylated["canonical_name"].unique()
    acetylated["base_name"] = acetylated["canonical_name"].map(dict(zip(names, map(base_name, names), strict=True)))
    count = peaks.groupby("canonical_name").size()
    acetylated["n_oac"] = acetylated["canonical_name"].map(count)
    acetylated["n_base"] = acetylated["base_name"].map(count).fillna(0).astype(int)
    base = peaks.rename(
        columns={
            "canonical_name": "base_name",
            "row": "base_row",
            "rt": "base_rt",
            "volume": "base_volume",
            "position": "base_position",
        }
    )
    base = base[["base_name", "base_row", "base_rt", "base_volume", "series", "base_position"]]

    same = acetylated["n_oac"] == acetylated["n_base"]
    by_series = acetylated[same].merge(base, on=["base_name", "series"], how="left")
    differ = acetylated[~same & (acetylated["n_base"] > 0)]
    dominant = _dominant(differ, "canonical_name", "volume").merge(
        _dominant(base, "base_name", "base_volume").drop(columns="series"), on="base_name", how="left"
    )
    dominant_rows = set(dominant["row"])
    unpaired = differ[~differ["row"].isin(dominant_rows)].copy()
    missing = acetylated[acetylated["n_base"] == 0].copy()

    paired = pd.concat([by_series, dominant], ignore_index=True)
    paired["shift"] = (paired["rt"] - paired["base_rt"]).round(6)
    early = paired["shift"] < -tolerance
    paired["verdict"] = np.where(
        early,
        "inconsistent: elutes "
        + (-paired["shift"]).map("{:.3f}".format)
        + f" min before its base (tolerance {tolerance:g})",
        "consistent: elutes " + paired["shift"].map("{:+.3f}".format) + " min relative to its base",
    )
    flagged[paired.loc[early, "position"].to_numpy(dtype=np.int64)] = True
    unpaired["verdict"] = (
        "not paired: "
        + unpaired["n_oac"].astype(str)
        + " OAc peaks but "
        + unpaired["n_base"].astype(str)
        + " base peaks, so series cannot be matched"
    )
    missing["verdict"] = "no base peak"
    table = pd.concat([paired, unpaired, missing], ignore_index=True).rename(
        columns={"row": "oac_row", "canonical_name": "oac_name", "rt": "oac_rt"}
    )
    table["base_row"] = table["base_row"].astype("Int64")
    table = table.reindex(columns=OAC_COLUMNS)
    return table.sort_values("oac_row", kind="stable").reset_index(drop=True), flagged


def _dominant(peaks: pd.DataFrame, name: str, volume: str) -> pd.DataFrame:
    """The largest peak of each name (the earlier series on a tie)."""
    ordered = peaks.sort_values([name, volume, "series"], ascending=[True, False, True], kind="stable")
    return ordered.drop_duplicates(name)
