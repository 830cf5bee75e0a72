"""The result of one analysis: per-row table, model reports, rule tables, summary, provenance."""

from __future__ import annotations

import dataclasses

import pandas as pd

from analysis.errors import RowIssue

STATUSES = ("valid", "outlier", "fragment", "unassessed", "invalid")
FLAGS = ("extrapolated", "fragment_review", "oac_inconsistent", "downweighted_anchor")

# Output columns after `row` and the input columns, in order.
RESULT_COLUMNS = [
    "status",
    "reason",
    "predicted_rt",
    "pi_low",
    "pi_high",
    "residual",
    "studentized_residual",
    "p_value",
    "q_value",
    "flags",
    "fragment_of",
    "merged_volume",
    "isomer_group",
    "series",
    "canonical_name",
    "head",
    "prefix",
    "isomer",
    "sialic",
    "neutral",
    "hex",
    "hexnac",
    "dhex",
    "neuac",
    "neugc",
    "oac",
    "total_sugars",
    "carbons",
    "double_bonds",
    "oxygen",
]
INPUT_COLUMNS = ["name", "rt", "volume", "log_p", "anchor"]
METRIC_KEYS = ("loo_rmsep", "loo_q2", "lohgo_rmsep", "n_anchors_used", "coverage")


@dataclasses.dataclass
class AnalysisResult:
    rows: pd.DataFrame
    models: list[dict]
    metrics: dict
    fragments: pd.DataFrame
    oacetylation: pd.DataFrame
    isomer_pairs: pd.DataFrame
    issues: list[RowIssue]
    summary: dict
    parameters: dict
    provenance: dict
    extra_columns: list[str]

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.summary["counts"])

    def invalid_rows(self) -> pd.DataFrame:
        return pd.DataFrame(
            [issue.to_dict() for issue in self.issues],
            columns=["row", "column", "value", "reason"],
        )
