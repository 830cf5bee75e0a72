"""Small builders for peak tables used across the analysis tests."""

from __future__ import annotations

import io

import pandas as pd

HEADER = ["Name", "RT", "Volume", "Log P", "Anchor"]


def csv_bytes(rows: list[tuple], header: list[str] | None = None) -> bytes:
    """CSV text for rows of (name, rt, volume, log_p, anchor[, extras...])."""
    frame = pd.DataFrame(rows, columns=header or HEADER[: len(rows[0])] if rows else header or HEADER)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def homologous_anchors(
    head: str = "GD1",
    carbons=range(34, 44),
    double_bonds=(1,),
    slope: float = 0.75,
    base: float = 9.0,
    anchor: str = "T",
) -> list[tuple]:
    """Anchors of one head group whose RT rises linearly with carbon number."""
    return [
        (f"{head}({c}:{db};O2)", round(base + slope * (c - 36) - 1.1 * (db - 1), 3), 1e6, 1.0, anchor)
        for c in carbons
        for db in double_bonds
    ]
