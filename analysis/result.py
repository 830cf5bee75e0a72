"""The result of one analysis: per-row table, model reports, rule tables, summary, provenance."""

from __future__ import annotations

import dataclasses

import pandas as pd

from analysis.errors import RowIssue

STATUSES = ("valid", "outlier", "fragment", "unassessed", "invalid")
FLAGS = (
    "extrapolated",
    "fragment_review",
    "oac_inconsistent",
    "extra_peak",
    "main_peak_outlier",
    "anchor_as_fragment",
    "anchor_inconsistent",
    "excluded_anchor",
    "series_ambiguous",
    "logp_inconsistent",
)

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
    "main_peak_row",
    "offset_from_main",
    "volume_fraction",
    "judged_series",
    "var_residual",
    "var_parameter",
    "var_head",
    "var_prefix",
    "var_species",
    "var_extrapolation",
    "var_isomer",
    "var_series",
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
METRIC_KEYS = (
    "loo_rmsep",
    "loo_rmsep_all_anchors",
    "lopo_rmsep",
    "lopo_coverage",
    "lopo_n_scored",
    "lohgo_rmsep",
    "lohgo_coverage",
    "lohgo_n_scored",
    "loo_q2",
    "n_anchors_used",
    "fraction_with_pi",
    "pi_coverage_main_peaks",
)


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
    logp_checks: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.summary["counts"])

    def invalid_rows(self) -> pd.DataFrame:
        return pd.DataFrame(
            [issue.to_dict() for issue in self.issues],
            columns=["row", "column", "value", "reason"],
        )
