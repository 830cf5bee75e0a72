"""Rule 5: in-source fragments, i.e. co-eluting peaks whose glycan is a strict part of a larger one.

In the ion source a ganglioside loses sialic acids, sugars or O-acetyl groups, and the product
is detected at the precursor's retention time under a smaller name. Among the co-eluting peaks
that contain a peak's glycan, the one that can explain it is the most abundant: a fragment is
a small share of its precursor's signal. So the precursor must be at least
`fragment_min_precursor_ratio` times the fragment's volume, and among those that are, the
largest volume wins (then the nearest RT); composition size and row order only break exact ties.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from analysis.names import COMPOSITION_UNITS

UNIT_WORDS = {
    "sialic": ("sialic acid", "sialic acids"),
    "neutral": ("neutral sugar", "neutral sugars"),
    "hex": ("Hex", "Hex"),
    "hexnac": ("HexNAc", "HexNAc"),
    "dhex": ("dHex", "dHex"),
    "neuac": ("NeuAc", "NeuAc"),
    "neugc": ("NeuGc", "NeuGc"),
    "oac": ("O-acetyl group", "O-acetyl groups"),
}
_OAC = COMPOSITION_UNITS.index("oac")
_RT_TOLERANCE = 1e-9  # so that a difference of exactly the window counts as inside it
_CHUNK = 50_000


@dataclasses.dataclass
class FragmentCalls:
    """Per-row outcome of Rule 5 (arrays aligned with the input frame) and the pair table."""

    is_fragment: np.ndarray  # bool
    fragment_of: np.ndarray  # row number of the precursor, 0 where none
    merged_volume: np.ndarray  # float, NaN for fragments
    review: np.ndarray  # bool: a candidate pair failed the volume-ratio test
    pairs: pd.DataFrame


def describe_loss(lost: dict[str, int]) -> str:
    parts = []
    for unit in COMPOSITION_UNITS:
        count = lost.get(unit, 0)
        if count:
            singular, plural = UNIT_WORDS[unit]
            parts.append(f"{count} {singular if count == 1 else plural}")
    return " + ".join(parts) if parts else "nothing"


def find_fragments(
    frame: pd.DataFrame,
    eligible: np.ndarray,
    window: float,
    min_precursor_ratio: float,
    progress: Callable[[float, str], None] | None = None,
) -> FragmentCalls:
    """Attribute in-source fragments among `eligible` rows of `frame` (science.md, Rule 5)."""
    n = len(frame)
    is_fragment = np.zeros(n, dtype=bool)
    review = np.zeros(n, dtype=bool)
    parent = np.full(n, -1, dtype=np.int64)
    volume = frame["volume"].to_numpy(dtype=float)
    rows = frame["row"].to_numpy(dtype=np.int64)

    index = np.flatnonzero(eligible)
    comp = frame[list(COMPOSITION_UNITS)].to_numpy(dtype=float)[index].astype(np.int64)
    rt = frame["rt"].to_numpy(dtype=float)[index]
    vol = volume[index]
    size = comp.sum(axis=1)
    names = frame["canonical_name"].to_numpy(dtype=object)[index]
    ceramide = frame[["carbons", "double_bonds", "oxygen"]].to_numpy(dtype=float)[index]

    # Sort by (ceramide, RT) so each peak's co-eluting partners form one contiguous block.
    group = np.unique(ceramide, axis=0, return_inverse=True)[1].ravel() if len(index) else np.zeros(0, int)
    span = (np.nanmax(rt) - np.nanmin(rt) + 10 * window + 1) if len(index) else 1.0
    key = group * span + rt
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    lo = np.searchsorted(sorted_key, sorted_key - window - _RT_TOLERANCE, side="left")
    hi = np.searchsorted(sorted_key, sorted_key + window + _RT_TOLERANCE, side="right")

    frag_local, prec_local, passes = [], [], []
    for start in range(0, len(order), _CHUNK):
        stop = min(start + _CHUNK, len(order))
        counts = hi[start:stop] - lo[start:stop]
        f_pos = np.repeat(np.arange(start, stop), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        p_pos = np.repeat(lo[start:stop], counts) + offsets
        f, p = order[f_pos], order[p_pos]
        subset = (comp[f] <= comp[p]).all(axis=1) & (comp[f] < comp[p]).any(axis=1)
        f, p = f[subset], p[subset]
        frag_local.append(f)
        prec_local.append(p)
        enough = vol[p] >= min_precursor_ratio * vol[f]
        # A base species and its own O-acetylated form are a Rule 4 pair: the base is absorbed
        # only when the O-acetylated peak is the larger one, whatever the ratio parameter says.
        only_oac = (np.delete(comp[p] - comp[f], _OAC, axis=1) == 0).all(axis=1)
        passes.append(enough & (~only_oac | (vol[p] > vol[f])))
        if progress:
            progress(
                stop / max(len(order), 1),
                f"compared co-eluting peaks: {stop:,} of {len(order):,}",
            )
    f = np.concatenate(frag_local) if frag_local else np.zeros(0, np.int64)
    p = np.concatenate(prec_local) if prec_local else np.zeros(0, np.int64)
    ok = np.concatenate(passes) if passes else np.zeros(0, bool)

    # Best precursor per fragment: the largest volume (the ion that can explain the fragment),
    # then the closest in RT; composition size, RT, name and row number only break exact ties.
    good_f, good_p = f[ok], p[ok]
    choice = np.lexsort(
        (
            rows[index[good_p]],
            names[good_p].astype(str),
            rt[good_p],
            -size[good_p],
            np.abs(rt[good_p] - rt[good_f]),
            -vol[good_p],
            good_f,
        )
    )
    good_f, good_p = good_f[choice], good_p[choice]
    first = np.ones(len(good_f), dtype=bool)
    first[1:] = good_f[1:] != good_f[:-1]
    chosen_f, chosen_p = good_f[first], good_p[first]
    parent[index[chosen_f]] = index[chosen_p]
    is_fragment[index[chosen_f]] = True

    # Candidates that were all too small to explain the peak: flag both sides for review.
    failed_f, failed_p = f[~ok], p[~ok]
    unresolved = ~np.isin(failed_f, chosen_f)
    review[index[failed_f[unresolved]]] = True
    review[index[failed_p[unresolved]]] = True

    root = _resolve_roots(parent)
    fragment_of = np.zeros(n, dtype=np.int64)
    fragment_of[is_fragment] = rows[root[is_fragment]]
    merged = volume.copy()
    np.add.at(merged, root[is_fragment], volume[is_fragment])
    merged[is_fragment] = np.nan
    pairs = _pair_table(
        frame,
        index,
        comp,
        rt,
        vol,
        chosen_f,
        chosen_p,
        failed_f[unresolved],
        failed_p[unresolved],
        root,
    )
    return FragmentCalls(is_fragment, fragment_of, merged, review, pairs)


def _resolve_roots(parent: np.ndarray) -> np.ndarray:
    """Follow fragment → precursor links to the peak that is not itself a fragment."""
    root = np.where(parent >= 0, parent, np.arange(len(parent)))
    while True:
        nxt = np.where(parent[root] >= 0, parent[root], root)
        if np.array_equal(nxt, root):
            return root
        root = nxt


PAIR_COLUMNS = [
    "fragment_row",
    "fragment_name",
    "fragment_rt",
    "fragment_volume",
    "precursor_row",
    "precursor_name",
    "precursor_rt",
    "precursor_volume",
    "delta_rt",
    "lost",
    "volume_ratio",
    "decision",
]


def _pair_table(frame, index, comp, rt, vol, chosen_f, chosen_p, failed_f, failed_p, root):
    rows = frame["row"].to_numpy()
    names = frame["name"].to_numpy(dtype=object)
    f = np.concatenate([chosen_f, failed_f]).astype(np.int64)
    p = np.concatenate([chosen_p, failed_p]).astype(np.int64)
    merged = np.arange(len(f)) < len(chosen_f)
    fi, pi = index[f], index[p]
    lost = comp[p] - comp[f]
    # Few distinct losses occur, so describe each once.
    kinds, inverse = np.unique(lost, axis=0, return_inverse=True)
    words = np.array(
        [describe_loss(dict(zip(COMPOSITION_UNITS, k.tolist(), strict=True))) for k in kinds], dtype=object
    )
    notes = words[inverse.ravel()] if len(f) else np.zeros(0, dtype=object)
    oac_only = (np.delete(lost, _OAC, axis=1) == 0).all(axis=1) & (lost[:, _OAC] > 0) if len(f) else np.zeros(0, bool)
    chained = merged & (root[fi] != pi)
    notes[chained] = [
        f"{note}; chained: precursor is itself a fragment of row {rows[root[i]]}"
        for note, i in zip(notes[chained], fi[chained], strict=True)
    ]
    table = pd.DataFrame(
        {
            "fragment_row": rows[fi],
            "fragment_name": names[fi],
            "fragment_rt": rt[f],
            "fragment_volume": vol[f],
            "precursor_row": rows[pi],
            "precursor_name": names[pi],
            "precursor_rt": rt[p],
            "precursor_volume": vol[p],
            "delta_rt": np.round(rt[f] - rt[p], 6),
            "lost": notes,
            "volume_ratio": np.round(vol[p] / vol[f], 6),
            "decision": np.where(
                merged,
                np.where(oac_only, "merged: base absorbed into its larger O-acetylated form", "merged"),
                "review: the co-eluting larger composition is too small to explain this peak",
            ),
        },
        columns=PAIR_COLUMNS,
    )
    return table.sort_values(["fragment_row", "precursor_row"], kind="stable").reset_index(drop=True)
