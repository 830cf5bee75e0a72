"""The model's terms, the design matrix, and which terms a set of anchors can estimate.

The composition columns are the same for every row. The isomer series enters as one column
per head group whose anchors show a second series (`series[GD1]`): a GD1 a/b spacing is not
a GT1 one, so each head group's offset is learned from its own anchors, and head groups
without such anchors borrow a pooled offset with its between-head uncertainty (model.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import scipy.linalg

CARBON_CENTRE = 36  # the commonest ceramide, d18:1/18:0; keeps the linear term interpretable
TERMS: tuple[tuple[str, str], ...] = (
    ("carbons", "ceramide carbons"),
    ("carbons_sq", f"(carbons − {CARBON_CENTRE})²"),
    ("double_bonds", "double bonds"),
    ("saturated", "saturated ceramide (no double bond)"),
    ("oxygen", "ceramide oxygens"),
    ("sialic", "sialic acids"),
    ("neutral", "neutral core sugars"),
    ("hex", "+Hex"),
    ("hexnac", "+HexNAc"),
    ("dhex", "+dHex/Fuc"),
    ("neuac", "+NeuAc"),
    ("neugc", "+NeuGc"),
    ("oac", "O-acetyl groups"),
)
DESIGN_COLUMNS = ["intercept", *(term for term, _ in TERMS)]
TERM_LABELS = {"intercept": "intercept", **dict(TERMS)}
# A saturation step the anchors cannot estimate is not a reason to give up on saturated rows:
# they are predicted with the linear double-bond term and widened as extrapolations instead.
SOFT_TERMS = frozenset({"saturated"})
# Terms whose range among the anchors bounds where the linear model may be trusted. Sialic acids
# and neutral sugars are properties of the head group, whose own offset covers them.
MODIFICATION_TERMS = ("hex", "hexnac", "dhex", "neuac", "neugc", "oac")
RANGE_TERMS = ("carbons", "double_bonds", "oxygen", *MODIFICATION_TERMS)
SERIES_PREFIX = "series["
_RANK_TOLERANCE = 1e-6  # relative size of an R diagonal below which a column adds nothing new
_GRAM_TOLERANCE = 1e-10  # the same on the squared scale of a Gram matrix's eigenvalues
MIN_TERM_SUPPORT = 2  # anchors away from a term's common value needed to estimate its effect


def series_column(head: str) -> str:
    return f"{SERIES_PREFIX}{head}]"


def column_label(column: str) -> str:
    if column.startswith(SERIES_PREFIX):
        return f"isomer series offset of {column[len(SERIES_PREFIX) : -1]}"
    return TERM_LABELS[column]


def design_matrix(frame: pd.DataFrame) -> np.ndarray:
    """Composition design (one column per DESIGN_COLUMNS entry) for every row of `frame`."""
    carbons = frame["carbons"].to_numpy(dtype=float)
    double_bonds = frame["double_bonds"].to_numpy(dtype=float)
    columns = [np.ones(len(frame))]
    for term, _ in TERMS:
        if term == "carbons_sq":
            columns.append((carbons - CARBON_CENTRE) ** 2)
        elif term == "saturated":
            columns.append((double_bonds == 0).astype(float))
        else:
            columns.append(frame[term].to_numpy(dtype=float))
    return np.column_stack(columns).astype(float)


def series_design(heads: np.ndarray, series_index: np.ndarray, series_heads: list[str]) -> np.ndarray:
    """One column per head group in `series_heads`: the row's series index where it is that head."""
    out = np.zeros((len(heads), len(series_heads)))
    if series_heads:
        column = pd.Series(heads, dtype=object).map({h: j for j, h in enumerate(series_heads)})
        rows = np.flatnonzero(column.notna().to_numpy())
        out[rows, column.to_numpy()[rows].astype(np.int64)] = np.asarray(series_index, dtype=float)[rows]
    return out


@dataclasses.dataclass
class ColumnChoice:
    keep: list[int]  # indices into the design's columns, intercept first
    constant: dict[int, float]  # dropped: the same value for every anchor
    confounded: list[int]  # dropped: a linear combination of kept columns


def choose_columns(anchor_design: np.ndarray) -> ColumnChoice:
    """Keep the intercept and a largest set of composition terms the anchors can estimate."""
    constant: dict[int, float] = {}
    varying: list[int] = []
    for j in range(1, anchor_design.shape[1]):
        column = anchor_design[:, j]
        if np.ptp(column) == 0:
            constant[j] = float(column[0])
        else:
            varying.append(j)
    confounded: list[int] = []
    keep = [0]
    if varying:
        # Pivoted QR of the centred, scaled columns, computed from their Gram matrix: the pivots
        # depend only on inner products, and the Gram matrix is p × p however many anchors.
        centred = anchor_design[:, varying] - anchor_design[:, varying].mean(axis=0)
        gram = centred.T @ centred
        norms = np.sqrt(np.diag(gram))
        correlation = gram / np.outer(norms, norms)
        eigenvalues, eigenvectors = np.linalg.eigh(correlation)
        root = np.sqrt(np.clip(eigenvalues, 0, None))[:, None] * eigenvectors.T
        _, r, pivots = scipy.linalg.qr(root, mode="economic", pivoting=True)
        diag = np.abs(np.diag(r))
        rank = int((diag > _RANK_TOLERANCE * max(diag.max(), 1e-300)).sum()) if diag.size else 0
        keep += sorted(varying[i] for i in pivots[:rank])
        confounded = sorted(varying[i] for i in pivots[rank:])
    return ColumnChoice(keep, constant, confounded)


def estimable(anchor_design: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """True where a row's full design vector lies in the row space of the anchors' design."""
    if len(rows) == 0:
        return np.zeros(0, dtype=bool)
    scale = np.maximum(np.abs(anchor_design).max(axis=0), 1.0)
    scaled_anchors = anchor_design / scale
    eigenvalues, eigenvectors = np.linalg.eigh(scaled_anchors.T @ scaled_anchors)
    basis = eigenvectors[:, eigenvalues > _GRAM_TOLERANCE * eigenvalues.max()].T
    scaled = rows / scale
    remainder = scaled - (scaled @ basis.T) @ basis
    return np.linalg.norm(remainder, axis=1) <= 1e-6 * (1 + np.linalg.norm(scaled, axis=1))


def set_aside_thin_terms(
    design: np.ndarray, anchors: np.ndarray, columns: list[str]
) -> tuple[np.ndarray, dict[int, tuple]]:
    """Leave out terms that fewer than MIN_TERM_SUPPORT anchors depart from, with those anchors.

    One anchor alone would determine such a term exactly (leverage 1): nothing could check
    it, and any error in that anchor would move every prediction that uses the term.
    Returns the anchors left and, per thin term, (common value, the anchors set aside). A thin
    soft term is dropped without setting its anchors aside (they are extrapolations instead).
    """
    thin: dict[int, tuple] = {}
    kept = anchors
    changed = True
    while changed and len(kept):
        changed = False
        for j in range(1, design.shape[1]):
            if j in thin:
                continue
            values = design[kept, j]
            uniques, counts = np.unique(values, return_counts=True)
            common = uniques[np.argmax(counts)]
            off = values != common
            if 0 < off.sum() < MIN_TERM_SUPPORT:
                if columns[j] in SOFT_TERMS:
                    thin[j] = (float(common), kept[:0])
                    continue
                thin[j] = (float(common), kept[off])
                kept = kept[~off]
                changed = True
    return kept, thin
