"""A simulated ganglioside extract with known truth: which peaks are misassigned, which are fragments.

Retention times follow a composition model close to the one fitted on the porcine brain
sample (carbons with curvature, double bonds, sialic acids, neutral sugars, modifications,
0.45 min between isomer series) plus a small head-group offset and scatter, so the
engine's model family is right but not exact. Volumes follow the chemistry too: a species'
isomers and its O-acetylated forms share its abundance, the isomer ratio is a property of the
head group (GD1a and GD1b about equal, one dominant isomer elsewhere), the peaks a small
extract misses are later isomers, and MS/MS confirms an abundant species' isomers together.
On top of the genuine peaks the generator injects in-source fragments (co-eluting, smaller, a
strict part of the precursor's glycan) and misassigned peaks (the RT of one species under the
name of another that elutes at least `min_outlier_shift` minutes away), including one wrong
anchor. `prefix_offset_sd` gives every prefix its own RT offset, for measuring calibration
where no anchor is.
"""

from __future__ import annotations

import dataclasses
import io
import itertools

import numpy as np
import pandas as pd

SIALIC_LETTERS = "AMDTQP"
# (sialic acids, series digit, relative abundance) of the head groups simulated.
HEADS = (
    (1, 1, 0.8),
    (1, 2, 0.5),
    (1, 3, 0.6),
    (1, 4, 0.1),
    (2, 1, 1.0),
    (2, 2, 0.3),
    (2, 3, 0.6),
    (3, 1, 1.0),
    (3, 2, 0.1),
    (3, 3, 0.2),
    (4, 1, 0.5),
    (5, 1, 0.1),
    (0, 1, 0.05),
    (0, 2, 0.03),
)
MOD_UNITS = ("dHex", "Hex", "HexNAc", "NeuAc", "NeuGc", "OAc")
# Sugar modifications as counts of (dHex, Hex, HexNAc, NeuAc, NeuGc), with abundance.
SUGAR_MODS = (
    ((0, 0, 0, 0, 0), 1.0),
    ((1, 0, 0, 0, 0), 0.15),
    ((0, 0, 1, 0, 0), 0.15),
    ((0, 1, 0, 0, 0), 0.03),
    ((0, 0, 0, 1, 0), 0.02),
    ((0, 0, 0, 0, 1), 0.02),
    ((1, 0, 1, 0, 0), 0.02),
    ((0, 1, 1, 0, 0), 0.02),
    ((2, 0, 0, 0, 0), 0.01),
    ((0, 0, 2, 0, 0), 0.01),
)
OAC_WEIGHTS = (1.0, 0.35, 0.1, 0.01)
CARBONS = range(24, 59)
DOUBLE_BONDS = {0: 0.3, 1: 1.0, 2: 0.3, 3: 0.05, 4: 0.01, 5: 0.003, 6: 0.001}
OXYGENS = {2: 1.0, 3: 0.05, 1: 0.01, 4: 0.003}

# The simulated truth: RT of series 0 relative to GD1(36:1;O2).
RT_BASE = 9.3
RT_EFFECTS = {
    "carbons": 0.81,
    "carbons_sq": -0.012,
    "double_bonds": -1.07,
    "sialic": -0.56,
    "neutral": -0.39,
    "oxygen": -0.6,
    "dHex": 0.22,
    "Hex": -0.35,
    "HexNAc": -0.31,
    "NeuAc": -0.5,
    "NeuGc": -0.55,
    "OAc": 0.09,
}
SERIES_OFFSET = 0.45
ISOMER_RATIOS = {(2, 1): 0.9}  # GD1b/GD1a, about equal in the sample
ISOMER_RATIO_RANGE = (0.15, 0.6)
FAMILY_COLUMNS = ("sialic", "digit", "dHex", "Hex", "HexNAc", "NeuAc", "NeuGc", "carbons", "double_bonds", "oxygen")
MSMS_RELATIVE_INTENSITY = 0.3  # a confirmed species' peaks this large relative to its largest get MS/MS too
SHARPNESS = 2.0  # >1 concentrates small extracts on common species, as real extracts are
LOGP_EFFECTS = {
    "intercept": -2.0,
    "carbons": 0.538,
    "double_bonds": -0.814,
    "sialic": -2.46,
    "neutral": -1.87,
    "oxygen": -1.37,
    "dHex": -0.99,
    "Hex": -1.9,
    "HexNAc": -2.07,
    "NeuAc": -2.46,
    "NeuGc": -2.6,
    "OAc": 0.553,
}


@dataclasses.dataclass
class SyntheticExtract:
    """The table an analyst would upload, and the truth behind every row."""

    table: pd.DataFrame  # Name, RT, Volume, Log P, Anchor
    truth: pd.DataFrame  # row, kind (genuine|outlier|fragment), true_name, fragment_of, model_rt
    seed: int

    def to_csv_bytes(self) -> bytes:
        buffer = io.StringIO()
        self.table.to_csv(buffer, index=False, lineterminator="\n")
        return buffer.getvalue().encode("utf-8")


def _species_grid() -> pd.DataFrame:
    records = []
    for (sialic, digit, head_w), (sugars, mod_w), oac in itertools.product(HEADS, SUGAR_MODS, range(len(OAC_WEIGHTS))):
        if oac > sialic:  # O-acetylation sits on sialic acids
            continue
        records.append((sialic, digit, *sugars, oac, head_w * mod_w * OAC_WEIGHTS[oac]))
    glycans = pd.DataFrame(
        records,
        columns=[
            "sialic",
            "digit",
            "dHex",
            "Hex",
            "HexNAc",
            "NeuAc",
            "NeuGc",
            "OAc",
            "weight",
        ],
    )
    carbons = np.array(list(CARBONS))
    chains = pd.DataFrame(
        list(itertools.product(carbons, DOUBLE_BONDS, OXYGENS)),
        columns=["carbons", "double_bonds", "oxygen"],
    )
    chains["chain_w"] = (
        np.exp(-((chains.carbons - 37.0) ** 2) / (2 * 3.0**2))
        * np.where(chains.carbons % 2 == 0, 3.0, 1.0)
        * chains.double_bonds.map(DOUBLE_BONDS)
        * chains.oxygen.map(OXYGENS)
    )
    grid = glycans.merge(chains, how="cross")
    grid["weight"] = grid["weight"] * grid.pop("chain_w")
    grid["neutral"] = 5 - grid["digit"]
    grid["model_rt"] = _model_rt(grid)
    return grid[(grid["model_rt"] > 1.0) & (grid["double_bonds"] <= grid["carbons"] // 2)].reset_index(drop=True)


def _model_rt(species: pd.DataFrame) -> np.ndarray:
    c = species["carbons"].to_numpy(float) - 36
    rt = (
        RT_BASE
        + RT_EFFECTS["carbons"] * c
        + RT_EFFECTS["carbons_sq"] * c**2
        + RT_EFFECTS["double_bonds"] * (species["double_bonds"] - 1)
        + RT_EFFECTS["sialic"] * (species["sialic"] - 2)
        + RT_EFFECTS["neutral"] * (species["neutral"] - 4)
        + RT_EFFECTS["oxygen"] * (species["oxygen"] - 2)
    )
    for unit in MOD_UNITS:
        rt = rt + RT_EFFECTS[unit] * species[unit]
    return np.asarray(rt, dtype=float)


def _log_p(species: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    value = LOGP_EFFECTS["intercept"] + sum(
        LOGP_EFFECTS[k] * species[k].to_numpy(float)
        for k in ("carbons", "double_bonds", "sialic", "neutral", "oxygen", *MOD_UNITS)
    )
    return np.round(value + rng.normal(0, 0.02, len(species)), 2)


def _misfit(species: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """How far each species departs from the model: shared by its ceramide, its head group,
    and its glycan apart from O-acetylation (so an OAc species keeps its base's misfit and
    the OAc shift stays tight, as it is in real extracts)."""
    total = np.zeros(len(species))
    levels = (
        (["carbons", "double_bonds", "oxygen"], 0.03),
        (["sialic", "digit"], 0.04),
        (
            [
                "sialic",
                "digit",
                "dHex",
                "Hex",
                "HexNAc",
                "NeuAc",
                "NeuGc",
                "carbons",
                "double_bonds",
                "oxygen",
            ],
            0.03,
        ),
        (
            [
                "sialic",
                "digit",
                "dHex",
                "Hex",
                "HexNAc",
                "NeuAc",
                "NeuGc",
                "OAc",
                "carbons",
                "double_bonds",
                "oxygen",
            ],
            0.01,
        ),
    )
    for columns, sd in levels:
        codes = pd.MultiIndex.from_frame(species[columns]).factorize()[0]
        total += rng.normal(0, sd, codes.max() + 1)[codes]
    return total


def _head_values(rng: np.random.Generator, known: dict, bounds: tuple[float, float]) -> dict[tuple[int, int], float]:
    """One value per head group (sialic acids, series digit): the known ones, the others drawn."""
    drawn = rng.uniform(*bounds, len(HEADS))
    return {(s, d): known.get((s, d), round(float(x), 3)) for (s, d, _), x in zip(HEADS, drawn, strict=True)}


def _prefix_offsets(peaks: pd.DataFrame, rng: np.random.Generator, sd: float) -> np.ndarray:
    """One RT offset per prefix (head group and modifications), shared by all its peaks."""
    if sd <= 0:
        return np.zeros(len(peaks))
    codes = pd.MultiIndex.from_frame(peaks[["sialic", "digit", *MOD_UNITS]]).factorize()[0]
    return rng.normal(0, sd, codes.max() + 1)[codes]


def _names(species: pd.DataFrame) -> np.ndarray:
    heads = [f"G{SIALIC_LETTERS[s]}{d}" for s, d in zip(species["sialic"], species["digit"], strict=True)]
    mods = [""] * len(species)
    for unit in MOD_UNITS:
        counts = species[unit].to_numpy()
        mods = [m + (f"+{k if k > 1 else ''}{unit}" if k else "") for m, k in zip(mods, counts, strict=True)]
    chains = [
        f"({c}:{db};O{o})"
        for c, db, o in zip(species["carbons"], species["double_bonds"], species["oxygen"], strict=True)
    ]
    return np.array([h + m + c for h, m, c in zip(heads, mods, chains, strict=True)], dtype=object)


def generate_extract(
    n_rows: int = 300,
    seed: int = 0,
    *,
    anchor_fraction: float = 0.15,
    outlier_fraction: float = 0.06,
    fragment_fraction: float = 0.10,
    noise_sd: float = 0.012,
    min_outlier_shift: float = 0.8,
    wrong_anchors: int = 1,
    prefix_offset_sd: float = 0.0,
) -> SyntheticExtract:
    """Simulate an extract of about `n_rows` peaks (exactly `n_rows` rows).

    `prefix_offset_sd` (minutes) gives every prefix its own RT offset on top of the composition
    effects: a world in which a modification's effect does not transfer exactly between head
    groups, as in real extracts, for measuring how intervals hold up where no anchor is.
    """
    if n_rows < 20:
        raise ValueError("a synthetic extract needs at least 20 rows")
    rng = np.random.default_rng(seed)
    grid = _species_grid()
    n_fragments = round(n_rows * fragment_fraction)
    n_outliers = round(n_rows * outlier_fraction)
    n_genuine = n_rows - n_fragments
    # Weighted sampling without replacement (Gumbel top-k): plausible species first. Each
    # species gives one or two isomer series; take more species until there are enough peaks.
    keys = SHARPNESS * np.log(grid["weight"].to_numpy()) + rng.gumbel(size=len(grid))
    ranking = np.argsort(-keys, kind="stable")
    second = rng.random(len(grid)) < np.where(grid["digit"].to_numpy() == 1, 0.45, 0.15)
    peaks_so_far = np.cumsum(1 + second[ranking])
    n_species = min(len(grid), int(np.searchsorted(peaks_so_far, n_genuine)) + 1)
    chosen = grid.iloc[np.sort(ranking[:n_species])].reset_index(drop=True)
    two = second[np.sort(ranking[:n_species])]
    # Drawn from their own stream, so the offsets change retention times and nothing else.
    offsets = _prefix_offsets(chosen, np.random.default_rng([seed, 1]), prefix_offset_sd)
    chosen["head_offset"] = _misfit(chosen, rng) + offsets

    series = np.concatenate([np.zeros(n_species, int), np.ones(int(two.sum()), int)])
    species_of = np.concatenate([np.arange(n_species), np.flatnonzero(two)])
    while len(species_of) < n_genuine:  # beyond the whole grid: further series of common species
        extra = rng.integers(0, n_species, n_genuine - len(species_of))
        species_of = np.concatenate([species_of, extra])
        series = np.concatenate([series, np.full(len(extra), series.max() + 1)])
    # The peaks not detected are later isomers: a species seen at all is seen at its first series.
    keep = np.sort(np.argsort(series + rng.random(len(series)), kind="stable")[:n_genuine])
    species_of, series = species_of[keep], series[keep]
    peaks = chosen.iloc[species_of].reset_index(drop=True)
    peaks["series"] = series
    peaks["model_rt"] = peaks["model_rt"] + peaks["head_offset"] + SERIES_OFFSET * series
    peaks["rt"] = peaks["model_rt"] + rng.normal(0, noise_sd, len(peaks))
    # A species' isomers share its abundance, and their ratio is a property of the head group's
    # biosynthesis (GD1a and GD1b are about equal in brain; most other head groups have one
    # dominant isomer), with a little scatter per peak.
    abundance = np.log10(np.maximum(peaks["weight"].to_numpy(), 1e-12))
    # O-acetylated forms share their base's abundance (scaled by how common O-acetylation is).
    family = pd.MultiIndex.from_frame(chosen[[c for c in chosen.columns if c in FAMILY_COLUMNS]]).factorize()[0]
    species_level = rng.normal(0, 0.45, family.max() + 1)[family][species_of]
    ratio = _head_values(rng, ISOMER_RATIOS, ISOMER_RATIO_RANGE)
    head_ratio = np.array([ratio[(s, d)] for s, d in zip(peaks["sialic"], peaks["digit"], strict=True)])
    peaks["volume"] = (
        10 ** (5.2 + 0.5 * (abundance - abundance.mean()) + species_level + rng.normal(0, 0.15, len(peaks)))
        * head_ratio**series
    )
    peaks["kind"] = "genuine"
    peaks["true_name"] = _names(peaks)
    peaks["name"] = peaks["true_name"]
    peaks["fragment_of"] = -1

    # Anchors: MS/MS confirms abundant species more often, and a confirmed species' isomers
    # together when they are of comparable size (the sample's GD1 anchors come in a/b pairs).
    n_anchors = max(5, round(n_genuine * anchor_fraction))
    volume = peaks["volume"].to_numpy()
    top = np.zeros(n_species)
    np.maximum.at(top, species_of, volume)
    score = np.log(np.maximum(top, 1e-300)) + rng.gumbel(size=n_species)
    confirmable = volume >= MSMS_RELATIVE_INTENSITY * top[species_of]
    per_species = np.bincount(species_of, weights=confirmable, minlength=n_species)
    order = np.argsort(-score, kind="stable")
    taken = order[: int(np.searchsorted(np.cumsum(per_species[order]), n_anchors)) + 1]
    peaks["anchor"] = np.isin(species_of, taken) & confirmable

    _inject_outliers(peaks, grid, rng, n_outliers, wrong_anchors, min_outlier_shift)
    fragments = _make_fragments(peaks, rng, n_fragments)
    table = pd.concat([peaks, fragments], ignore_index=True)
    table = table.iloc[rng.permutation(len(table))].reset_index(drop=True)
    table["row"] = np.arange(1, len(table) + 1)
    position_to_row = dict(zip(table["_id"], table["row"], strict=True))
    table["fragment_of"] = [position_to_row.get(i, pd.NA) if i >= 0 else pd.NA for i in table["fragment_of"]]
    table["log_p"] = _log_p(table, rng)
    out = pd.DataFrame(
        {
            "Name": table["name"],
            "RT": np.round(table["rt"], 3),
            # a volume is a positive count: a tiny fragment (rare above 10^5 rows) is 1, not 0
            "Volume": np.maximum(np.round(table["volume"]), 1).astype(np.int64),
            "Log P": table["log_p"],
            "Anchor": np.where(table["anchor"], "T", "F"),
        }
    )
    truth = pd.DataFrame(
        {
            "row": table["row"],
            "kind": table["kind"],
            "true_name": table["true_name"],
            "fragment_of": pd.array(table["fragment_of"], dtype="Int64"),
            "model_rt": np.round(table["model_rt"], 4),
            "anchor": table["anchor"],
        }
    )
    return SyntheticExtract(out, truth, seed)


def _inject_outliers(peaks, grid, rng, n_outliers, wrong_anchors, min_shift) -> None:
    """Rename peaks to a species whose true RT lies at least `min_shift` away."""
    peaks["_id"] = np.arange(len(peaks))
    candidates = np.flatnonzero(~peaks["anchor"].to_numpy())
    anchors = np.flatnonzero(peaks["anchor"].to_numpy())
    picks = rng.choice(candidates, size=min(n_outliers, len(candidates)), replace=False)
    if wrong_anchors and len(anchors) > 10:
        picks = np.concatenate([picks, rng.choice(anchors, size=wrong_anchors, replace=False)])
    changes = (
        ("carbons", 2),
        ("carbons", -2),
        ("double_bonds", 1),
        ("double_bonds", -1),
        ("carbons", 4),
        ("oxygen", 1),
    )
    chosen = peaks.iloc[picks]
    best_key = np.full(len(picks), -np.inf)
    best = [None] * len(picks)
    for field, delta in changes:
        wrong = chosen.copy()
        wrong[field] = wrong[field] + delta
        expected = _model_rt(wrong) + wrong["head_offset"].to_numpy() + SERIES_OFFSET * wrong["series"].to_numpy()
        ok = (
            ((wrong["double_bonds"] >= 0) & (wrong["carbons"] >= min(CARBONS)) & wrong["oxygen"].isin(list(OXYGENS)))
            .to_numpy()
            .copy()
        )
        ok &= (np.abs(expected - chosen["rt"].to_numpy()) >= min_shift) & (expected > 1.0)
        key = np.where(ok, rng.random(len(picks)), -np.inf)
        better = key > best_key
        best_key[better] = key[better]
        names = _names(wrong)
        for i in np.flatnonzero(better):
            best[i] = names[i]
    renamed = np.isfinite(best_key)
    rows = picks[renamed]
    peaks.loc[rows, "name"] = [best[i] for i in np.flatnonzero(renamed)]
    peaks.loc[rows, "kind"] = "outlier"


def _make_fragments(peaks: pd.DataFrame, rng: np.random.Generator, n_fragments: int) -> pd.DataFrame:
    """In-source fragments: lose one sialic acid, one O-acetyl group or one neutral sugar."""
    genuine = peaks[peaks["kind"] == "genuine"]
    can_lose = genuine[(genuine["sialic"] >= 1) | (genuine["OAc"] >= 1) | (genuine["digit"] <= 3)]
    keys = 0.5 * np.log(can_lose["volume"].to_numpy()) + rng.gumbel(size=len(can_lose))
    k = min(n_fragments, len(can_lose))
    picks = np.sort(np.argpartition(-keys, k - 1)[:k]) if k else np.zeros(0, int)
    fragments = can_lose.iloc[picks].copy().reset_index(drop=True)
    # Which part is lost: sialic acid twice as likely as an O-acetyl group or a neutral sugar.
    weights = np.column_stack(
        [
            (fragments["OAc"] >= 1).to_numpy() * 1.0,
            ((fragments["sialic"] >= 1) & (fragments["sialic"] > fragments["OAc"])).to_numpy() * 2.0,
            (fragments["digit"] <= 3).to_numpy() * 1.0,
        ]
    )
    loss = np.argmax(np.log(np.maximum(weights, 1e-300)) + rng.gumbel(size=weights.shape), axis=1)
    fragments.loc[loss == 0, "OAc"] -= 1
    fragments.loc[loss == 1, "sialic"] -= 1
    fragments.loc[loss == 2, "digit"] += 1
    fragments.loc[loss == 2, "neutral"] -= 1
    fragments["fragment_of"] = fragments["_id"]
    fragments["rt"] = fragments["rt"] + np.clip(rng.normal(0, 0.008, len(fragments)), -0.025, 0.025)
    fragments["volume"] = fragments["volume"] * rng.uniform(0.03, 0.3, len(fragments))
    fragments["anchor"] = False
    fragments["kind"] = "fragment"
    fragments["true_name"] = _names(fragments) if len(fragments) else []
    fragments["name"] = fragments["true_name"]
    fragments["_id"] = -1 - np.arange(len(fragments))
    return fragments


def crowded_table(rows: int, seed: int = 1, names: int = 48) -> bytes:
    """A valid but degenerate table: `rows` peaks of a few names on whole-minute RTs (5–8 min).

    Every peak co-elutes with hundreds of others of the same composition, the worst case for
    the pairwise searches (fragments, isomers, O-acetylation). Used by the memory tests and the
    engine benchmark; it has no known truth.
    """
    chosen = generate_extract(300, seed=0).table["Name"].drop_duplicates().head(names).tolist()
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "Name": rng.choice(chosen, rows),
            "RT": rng.integers(5, 9, rows).astype(float),
            "Volume": rng.integers(1000, 10**6, rows),
            "Log P": 2.0,
            "Anchor": rng.choice(["T", "F"], rows),
        }
    )
    return table.to_csv(index=False).encode()
