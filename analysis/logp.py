"""The Log P input check: computed Log P should follow the composition within a prefix.

Log P is a property of the species, computed by the software that named it, so within one
prefix it is almost exactly additive in the ceramide: about +0.54 per carbon, −0.83 per double
bond and −1.37 per oxygen on the porcine sample, with one uniform offset for saturated
ceramides (real chemistry, not a defect). A value that departs from that pattern, or that falls
while the chain grows, points at a typing error or a wrong name. The pattern is fitted robustly
(Huber's M-estimator) on one value per name, with an intercept per prefix and
the slopes shared by all prefixes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

LOGP_TOLERANCE = 0.5
HUBER_K = 1.345  # 95 % efficiency at the normal distribution


def huber_fit(x: np.ndarray, y: np.ndarray, groups: np.ndarray, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Huber M-estimate of y = group intercept + x·β by iteratively reweighted least squares.

    The scale is the MAD of the residuals. The group intercepts are profiled out by weighted
    demeaning within each group, so each iteration costs O(n) however many groups there are.
    Returns (β, fitted values). The same estimator as statsmodels' RLM with HuberT and one dummy
    per group (the tests check the two agree).
    """
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    weights = np.ones(len(y))
    beta = np.zeros(x.shape[1])
    fitted = np.zeros(len(y))
    for _ in range(iterations):
        total = np.bincount(groups, weights=weights, minlength=n_groups)
        y_mean = np.bincount(groups, weights=weights * y, minlength=n_groups) / total
        x_mean = (
            np.column_stack(
                [np.bincount(groups, weights=weights * x[:, j], minlength=n_groups) / total for j in range(x.shape[1])]
            )
            if x.shape[1]
            else np.zeros((n_groups, 0))
        )
        xc, yc = x - x_mean[groups], y - y_mean[groups]
        root = np.sqrt(weights)
        updated = np.linalg.lstsq(xc * root[:, None], yc * root, rcond=None)[0]
        fitted = y_mean[groups] + (x - x_mean[groups]) @ updated
        resid = y - fitted
        scale = 1.4826 * np.median(np.abs(resid - np.median(resid)))
        converged = np.max(np.abs(updated - beta)) < 1e-6 if len(beta) else True
        beta = updated
        if scale <= 1e-12 or converged:
            break
        u = np.abs(resid) / (HUBER_K * scale)
        weights = np.where(u <= 1, 1.0, 1 / np.maximum(u, 1e-12))
    return beta, fitted


@dataclasses.dataclass
class LogPCheck:
    flagged: np.ndarray  # bool per frame row
    notes: np.ndarray  # reason text per frame row ("" where fine)
    table: pd.DataFrame  # one line per flagged name
    slopes: dict[str, float]
    status: str


LOGP_COLUMNS = ["name", "rows", "log_p", "expected", "deviation", "finding"]


def check_logp(frame: pd.DataFrame, valid: np.ndarray) -> LogPCheck:
    n = len(frame)
    flagged = np.zeros(n, dtype=bool)
    notes = np.full(n, "", dtype=object)
    log_p = frame["log_p"].to_numpy(dtype=float)
    usable = valid & np.isfinite(log_p)
    empty = pd.DataFrame(columns=LOGP_COLUMNS)
    if usable.sum() < 5:
        return LogPCheck(flagged, notes, empty, {}, "not checked: fewer than 5 rows with a Log P")
    names = frame["canonical_name"].to_numpy(dtype=object)[usable].astype(str)
    unique_names, first, inverse = np.unique(names, return_index=True, return_inverse=True)
    positions = np.flatnonzero(usable)
    # One value per name (a species has one Log P; repeated peaks repeat it).
    order = np.lexsort((log_p[usable], inverse))
    counts = np.bincount(inverse)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_values = log_p[usable][order]
    medians = (sorted_values[starts + (counts - 1) // 2] + sorted_values[starts + counts // 2]) / 2
    picked = positions[first]
    species = pd.DataFrame(
        {
            "canonical_name": unique_names,
            "prefix": frame["prefix"].to_numpy(dtype=object)[picked],
            "carbons": frame["carbons"].to_numpy(dtype=float)[picked],
            "double_bonds": frame["double_bonds"].to_numpy(dtype=float)[picked],
            "oxygen": frame["oxygen"].to_numpy(dtype=float)[picked],
            "log_p": medians,
        }
    )
    prefixes, prefix_code = np.unique(species["prefix"].to_numpy(dtype=object).astype(str), return_inverse=True)
    chain = {
        "carbons": species["carbons"].to_numpy(float),
        "double_bonds": species["double_bonds"].to_numpy(float),
        "oxygen": species["oxygen"].to_numpy(float),
        "saturated": (species["double_bonds"].to_numpy() == 0).astype(float),
    }
    chain = {k: v for k, v in chain.items() if np.ptp(v) > 0}
    x = np.column_stack(list(chain.values())) if chain else np.zeros((len(species), 0))
    if len(species) - len(prefixes) - x.shape[1] < 3:
        return LogPCheck(flagged, notes, empty, {}, "not checked: too few names to learn the additive pattern")
    params, expected = huber_fit(x, species["log_p"].to_numpy(float), prefix_code)
    deviation = species["log_p"].to_numpy(float) - expected
    slopes = dict(zip(chain, (float(b) for b in params), strict=True))
    value = species["log_p"].to_numpy(float)
    name_of = species["canonical_name"].to_numpy(dtype=object)
    prefix_of = species["prefix"].to_numpy(dtype=object)
    findings: dict[int, list[str]] = {}
    for i in np.flatnonzero(np.abs(deviation) > LOGP_TOLERANCE).tolist():
        findings.setdefault(i, []).append(
            f"Log P {value[i]:.2f} departs by {deviation[i]:+.2f} from the {expected[i]:.2f} "
            f"the rest of {prefix_of[i]} implies"
        )
    # Within a prefix and chain family (double bonds, oxygens) Log P must rise with carbons; of a
    # pair that breaks the order, the value further from the pattern is the suspect.
    order = np.lexsort(
        (
            chain_carbons := species["carbons"].to_numpy(float),
            species["oxygen"].to_numpy(float),
            species["double_bonds"].to_numpy(float),
            prefix_code,
        )
    )
    family = np.column_stack([prefix_code, species["double_bonds"].to_numpy(float), species["oxygen"].to_numpy(float)])[
        order
    ]
    same_family = (family[1:] == family[:-1]).all(axis=1) & (np.diff(chain_carbons[order]) > 0)
    falls = np.flatnonzero(same_family & (value[order][1:] < value[order][:-1]))
    for a in falls.tolist():
        lower, higher = int(order[a]), int(order[a + 1])
        suspect, other = (higher, lower) if abs(deviation[higher]) >= abs(deviation[lower]) else (lower, higher)
        findings.setdefault(suspect, []).append(
            f"Log P {value[suspect]:.2f} against {value[other]:.2f} for {name_of[other]}: "
            "Log P must rise with the chain length within a prefix"
        )
    records = []
    row_numbers = frame["row"].to_numpy()
    at_of: dict[int, list[int]] = {k: [] for k in findings}
    for position, k in zip(positions.tolist(), inverse.tolist(), strict=True):
        if k in at_of:
            at_of[k].append(position)
    for k, texts in findings.items():
        at = np.asarray(at_of[k], dtype=np.int64)
        text = "; ".join(dict.fromkeys(texts))
        flagged[at] = True
        notes[at] = text
        records.append(
            (
                name_of[k],
                ", ".join(map(str, row_numbers[at])),
                medians[k],
                round(expected[k], 3),
                round(deviation[k], 3),
                text,
            )
        )
    table = pd.DataFrame(records, columns=LOGP_COLUMNS).sort_values("name", kind="stable").reset_index(drop=True)
    return LogPCheck(flagged, notes, table, slopes, f"checked {len(species)} names in {len(prefixes)} prefixes")
