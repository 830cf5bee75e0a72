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
_QUERIES_PER_BLOCK = 250_000  # window queries answered at once: bounds the search's memory


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
    search = _CoElution(ceramide, comp, rt, rows[index], window)

    cand_f, cand_p, cand_lo, cand_hi, passes = [], [], [], [], []
    for done, f, p, lo, hi in search.best_per_superset(vol):
        cand_f.append(f)
        cand_p.append(p)
        cand_lo.append(lo)
        cand_hi.append(hi)
        enough = vol[p] >= min_precursor_ratio * vol[f]
        # A base species and its own O-acetylated form are a Rule 4 pair: the base is absorbed
        # only when the O-acetylated peak is the larger one, whatever the ratio parameter says.
        only_oac = (np.delete(comp[p] - comp[f], _OAC, axis=1) == 0).all(axis=1)
        passes.append(enough & (~only_oac | (vol[p] > vol[f])))
        if progress:
            progress(done, f"compared co-eluting peaks: {done:.0%}")
    f, p, lo, hi, ok = (
        np.concatenate(parts) if parts else np.zeros(0, dtype)
        for parts, dtype in (
            (cand_f, np.int64),
            (cand_p, np.int64),
            (cand_lo, np.int64),
            (cand_hi, np.int64),
            (passes, bool),
        )
    )

    # Best precursor per fragment: the largest volume (the ion that can explain the fragment),
    # then the closest in RT; composition size, RT, name and row number only break exact ties.
    # Passing the ratio test is monotone in volume, so the largest peak of each larger
    # composition in the window is the only candidate of that composition that can win.
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

    # Candidates that were all too small to explain the peak: flag both sides for review (every
    # co-eluting peak of a larger composition, not only the largest of each).
    unresolved = ~ok & ~np.isin(f, chosen_f)
    review[index[f[unresolved]]] = True
    review[index[search.rows_in(lo[unresolved], hi[unresolved])]] = True
    crowd = hi[unresolved] - lo[unresolved]

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
        f[unresolved],
        p[unresolved],
        crowd,
        root,
    )
    return FragmentCalls(is_fragment, fragment_of, merged, review, pairs)


class _CoElution:
    """Which peaks of a larger composition co-elute with each peak, in memory linear in rows.

    Peaks are sorted by (ceramide, composition, RT): all peaks of one species form a block, so
    the peaks of species b within the window of a peak are one contiguous range found by binary
    search, and the largest of them by a sparse-table range-maximum query. A peak is compared
    with each larger species of its ceramide whose RT span reaches it, never with each of that
    species' peaks: the work is rows × species, whatever the crowding (a table of a few names
    on a few RTs made the pairwise search quadratic).
    """

    def __init__(self, ceramide, comp, rt, rows, window: float) -> None:
        self.rt, self.window = rt, window + _RT_TOLERANCE
        n = len(rt)
        keys = np.column_stack([ceramide, comp]) if n else np.zeros((0, 3 + comp.shape[1]))
        # Species: one id per distinct (ceramide, composition), in sorted order (hash grouping).
        columns = pd.DataFrame(keys)
        self.species = columns.groupby(list(columns.columns), sort=True, dropna=False).ngroup().to_numpy(np.int64)
        species_keys = np.zeros((self.species.max() + 1 if n else 0, keys.shape[1]))
        species_keys[self.species] = keys
        self.order = np.lexsort((rows, rt, self.species))  # position → peak
        sorted_species = self.species[self.order]
        self.start = np.searchsorted(sorted_species, np.arange(len(species_keys)), side="left")
        self.stop = np.searchsorted(sorted_species, np.arange(len(species_keys)), side="right")
        self.sorted_rt = rt[self.order]
        # One sorted key over all blocks, so that every window query is one binary search.
        self.span = (np.nanmax(rt) - np.nanmin(rt) + 10 * self.window + 1) if n else 1.0
        self.base = np.nanmin(rt) if n else 0.0
        self.sorted_key = sorted_species * self.span + (self.sorted_rt - self.base)
        self.pairs = self._superset_pairs(species_keys, comp.shape[1])

    def _superset_pairs(self, species_keys: np.ndarray, units: int) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (species, larger species of its ceramide) whose RT spans meet."""
        if not len(species_keys):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        first = self.sorted_rt[self.start]
        last = self.sorted_rt[self.stop - 1]
        ceramides = pd.DataFrame(species_keys[:, :3]).groupby([0, 1, 2], sort=False, dropna=False).ngroup()
        smaller, larger = [], []
        for members in pd.Series(np.arange(len(species_keys))).groupby(ceramides.to_numpy()).indices.values():
            meets = (first[members][None, :] <= last[members][:, None] + self.window) & (
                last[members][None, :] >= first[members][:, None] - self.window
            )
            i, j = np.nonzero(meets)
            a, b = species_keys[members[i], 3:], species_keys[members[j], 3:]
            contains = (b >= a).all(axis=1) & (b > a).any(axis=1)
            smaller.append(members[i[contains]])
            larger.append(members[j[contains]])
        return np.concatenate(smaller), np.concatenate(larger)

    def best_per_superset(self, volume: np.ndarray):
        """Yield (share done, fragment, largest co-eluting peak, range start, range stop) blocks:
        one entry per peak and larger species with at least one peak in the window."""
        table = _RangeMax(volume[self.order])
        smaller, larger = self.pairs
        counts = self.stop[smaller] - self.start[smaller]  # queries per species pair
        total = counts.sum()
        ends = np.cumsum(counts)
        # Blocks of whole pairs, about _QUERIES_PER_BLOCK queries each, eight at least.
        per_block = max(min(_QUERIES_PER_BLOCK, -(-total // 8)), 1)
        cuts = np.unique(np.searchsorted(ends, np.arange(per_block, total + per_block, per_block), side="left") + 1)
        begin = 0
        for cut in np.minimum(cuts, len(smaller)):
            if cut <= begin:
                continue
            a, b, c = smaller[begin:cut], larger[begin:cut], counts[begin:cut]
            offsets = np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
            f = self.order[np.repeat(self.start[a], c) + offsets]
            yield ends[cut - 1] / total, *self._answer(f, np.repeat(b, c), table)
            begin = cut

    def _answer(self, f: np.ndarray, b: np.ndarray, table: _RangeMax):
        t = self.rt[f]
        lo = self._search(b, t - self.window, "left")
        hi = self._search(b, t + self.window, "right")
        found = hi > lo
        f, lo, hi = f[found], lo[found], hi[found]
        return f, self.order[table.argmax(lo, hi)], lo, hi

    def _search(self, species: np.ndarray, at: np.ndarray, side: str) -> np.ndarray:
        return np.searchsorted(self.sorted_key, species * self.span + (at - self.base), side)

    def rows_in(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The peaks of every [lo, hi) range of positions (a difference array, not a loop)."""
        marks = np.zeros(len(self.order) + 1, dtype=np.int64)
        np.add.at(marks, lo, 1)
        np.add.at(marks, hi, -1)
        return self.order[np.cumsum(marks)[:-1] > 0]


class _RangeMax:
    """Position of the largest value in values[lo:hi] for many ranges at once (sparse table);
    the first such position on ties."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        levels = [np.arange(len(values), dtype=np.int64)]
        width = 1
        while 2 * width <= len(values):
            prev = levels[-1]
            left, right = prev[: len(prev) - width], prev[width:]
            levels.append(np.where(values[right] > values[left], right, left))
            width *= 2
        self.levels = levels

    def argmax(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        if not len(lo):
            return np.zeros(0, dtype=np.int64)
        level = np.floor(np.log2(hi - lo)).astype(np.int64)
        out = np.empty(len(lo), dtype=np.int64)
        for k in np.unique(level):
            where = level == k
            left = self.levels[k][lo[where]]
            right = self.levels[k][hi[where] - (1 << k)]
            out[where] = np.where(self.values[right] > self.values[left], right, left)
        return out


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


def _pair_table(frame, index, comp, rt, vol, chosen_f, chosen_p, failed_f, failed_p, crowd, root):
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
    crowded = np.concatenate([np.ones(len(chosen_f), np.int64), crowd]) > 1
    notes[crowded] = [
        f"{note}; the largest of {count} co-eluting peaks of this composition, all too small"
        for note, count in zip(
            notes[crowded], np.concatenate([np.ones(len(chosen_f), np.int64), crowd])[crowded], strict=True
        )
    ]
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
