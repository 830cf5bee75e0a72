"""Builders for a finished job's results: cards, plots, tables and downloads (no callbacks here)."""

from __future__ import annotations

import functools
import math

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from analysis.params import Parameters
from analysis.result import AnalysisResult
from dashboard import figures, ids
from dashboard.components import status_badge, status_explanation, summary_card
from store.db import Database
from store.results import load_result

PLOTS = {"rt": "RT vs Log P", "observed": "Predicted vs observed", "residuals": "Residuals"}
TABS = {
    "peaks": "Peaks",
    "model": "Model",
    "fragments": "Fragments",
    "oac": "O-acetylation",
    "isomers": "Isomer series",
    "invalid": "Invalid rows",
}
GRID_COLUMNS = [
    ("row", "row", 80, "agNumberColumnFilter"),
    ("name", "name", 190, "agTextColumnFilter"),
    ("status", "status", 120, "agTextColumnFilter"),
    ("rt", "RT", 90, "agNumberColumnFilter"),
    ("predicted_rt", "predicted", 100, "agNumberColumnFilter"),
    ("pi_low", "PI low", 90, "agNumberColumnFilter"),
    ("pi_high", "PI high", 90, "agNumberColumnFilter"),
    ("residual", "residual", 95, "agNumberColumnFilter"),
    ("q_value", "q", 90, "agNumberColumnFilter"),
    ("flags", "flags", 200, "agTextColumnFilter"),
    ("fragment_of", "fragment of", 110, "agNumberColumnFilter"),
    ("series", "series", 80, "agNumberColumnFilter"),
    ("main_peak_row", "main peak", 100, "agNumberColumnFilter"),
    ("judged_series", "judged as series", 130, "agNumberColumnFilter"),
    ("prefix", "prefix", 140, "agTextColumnFilter"),
    ("volume", "volume", 110, "agNumberColumnFilter"),
    ("merged_volume", "merged volume", 130, "agNumberColumnFilter"),
    ("log_p", "Log P", 85, "agNumberColumnFilter"),
    ("anchor", "anchor", 90, "agTextColumnFilter"),
    ("reason", "reason", 520, "agTextColumnFilter"),
]


@functools.lru_cache(maxsize=4)
def cached_result(db: Database, job_id: str, version: int) -> AnalysisResult | None:
    """A job's stored result; `version` (the job's event number) changes when a rerun replaces it."""
    return load_result(db, job_id)


GRID_ROW_LIMIT = 20_000  # beyond this the browser table shows the rows that need attention first
STATUS_PRIORITY = {"outlier": 0, "invalid": 1, "unassessed": 2, "fragment": 3, "valid": 4}


def grid_rows_shown(result: AnalysisResult) -> pd.DataFrame:
    """All rows, or for very large tables the most important GRID_ROW_LIMIT (outliers and flagged first)."""
    rows = result.rows
    if len(rows) <= GRID_ROW_LIMIT:
        return rows
    flagged = rows["flags"].map(bool)
    rank = rows["status"].map(STATUS_PRIORITY) * 2 + (~flagged).astype(int)
    chosen = rows.assign(_rank=rank).sort_values(["_rank", "row"], kind="stable").head(GRID_ROW_LIMIT)
    return chosen.drop(columns="_rank").sort_values("row")


def grid_records(result: AnalysisResult) -> list[dict]:
    names = [name for name, *_ in GRID_COLUMNS] + list(result.extra_columns)
    rows = grid_rows_shown(result)[names].copy()
    rows["anchor"] = rows["anchor"].map(lambda v: "" if v is pd.NA or v is None else ("yes" if v else "no"))
    rows["flags"] = rows["flags"].map(lambda f: "; ".join(f))
    plain = rows.astype(object).where(rows.notna(), None)
    # AG Grid wants string row ids, and its expressions cannot call String(): give one per row.
    plain["key"] = rows["row"].astype(str)
    return plain.to_dict(orient="records")


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _percent(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value * 100:.1f} %"


def summary_cards(job, result: AnalysisResult, filename: str) -> html.Div:
    metrics, summary, source = result.metrics, result.summary, result.provenance["input"]
    counts = summary["counts"]
    duration = result.provenance.get("duration_seconds")
    cards = dbc.Row(
        [
            summary_card("rows", f"{summary['n_rows']:,}", " ".join(f"{k} {v}" for k, v in counts.items() if v)),
            summary_card(
                "outliers",
                counts["outlier"],
                f"{summary.get('identity_outliers', 0)} identities (main peaks), "
                f"{summary.get('extra_peak_outliers', 0)} extra peaks, "
                f"{summary.get('anchors_inconsistent', 0)} anchors; of {counts['valid'] + counts['outlier']} assessed",
            ),
            summary_card(
                "anchors used",
                f"{metrics.get('n_anchors_used') or 0} / {summary['n_anchors']}",
                f"{summary['n_anchors_usable']} after removing fragments",
            ),
            summary_card(
                "prediction error (RMSEP)",
                f"{_fmt(metrics.get('loo_rmsep'))} / {_fmt(metrics.get('lopo_rmsep'))} min",
                f"leave one anchor out ({metrics.get('n_anchors_used') or 0}) / leave its whole prefix out "
                f"({metrics.get('lopo_n_scored', 0)} scored); head group out {_fmt(metrics.get('lohgo_rmsep'))}, "
                f"every confirmed anchor {_fmt(metrics.get('loo_rmsep_all_anchors'))}",
                card_id="rmsep-card",
            ),
            summary_card(
                "main peaks inside their interval",
                _percent(metrics.get("pi_coverage_main_peaks")),
                f"names without an anchor ({metrics.get('n_main_peaks_scored') or 0}); "
                f"{_percent(metrics.get('fraction_with_pi'))} of rows have an interval",
            ),
            summary_card(
                "analysis time",
                f"{duration:.2f} s" if duration is not None else "–",
                f"finished {str(job.finished_at)[:19]} UTC",
            ),
        ],
        className="g-2",
    )
    defaults = Parameters().to_dict()
    params = ", ".join(
        f"{k} = {v}" + (" (changed)" if defaults.get(k) != v else "") for k, v in result.parameters.items()
    )
    model_line = summary["model"] if summary["model"] != "fitted" else result.models[0].get("formula", "")
    return html.Div(
        [
            html.Div([status_badge(status, count) for status, count in counts.items()], className="mb-2"),
            cards,
            html.Div(
                [
                    html.B("Input: "),
                    f"{filename} ({source['rows']:,} rows, {source['format'].upper()}"
                    + ("" if summary.get("log_p_given", True) else ", no Log P column: Log P checks skipped")
                    + "), SHA-256 ",
                    html.Code(source["sha256"], className="small"),
                ],
                className="small mt-1",
            ),
            html.Div([html.B("Model: "), model_line], className="small"),
            html.Div([html.B("Parameters: "), params], className="small mb-2"),
        ]
    )


def downloads(job_id: str) -> html.Div:
    base = dash.get_relative_path(f"/api/jobs/{job_id}")
    link = "btn btn-outline-secondary btn-sm me-1"
    return html.Div(
        [
            html.Span("Download: ", className="small me-1"),
            html.A(
                [html.I(className="bi bi-filetype-csv me-1"), "CSV"],
                href=f"{base}/results.csv",
                className=link,
                download="",
            ),
            html.A(
                [html.I(className="bi bi-file-earmark-spreadsheet me-1"), "XLSX"],
                href=f"{base}/results.xlsx",
                className=link,
                download="",
            ),
            html.A(
                [html.I(className="bi bi-filetype-json me-1"), "JSON"],
                href=f"{base}/results.json",
                className=link,
                download="",
            ),
            html.Span(" figure: ", className="small ms-2 me-1"),
            dbc.Button("PNG", id=ids.FIGURE_PNG_BUTTON, size="sm", outline=True, color="secondary", className="me-1"),
            dbc.Button("SVG", id=ids.FIGURE_SVG_BUTTON, size="sm", outline=True, color="secondary", className="me-1"),
            dbc.Button("HTML", id=ids.FIGURE_HTML_BUTTON, size="sm", outline=True, color="secondary"),
            dcc.Download(id=ids.DOWNLOAD_FIGURE),
        ],
        className="mb-2",
    )


def head_options(result: AnalysisResult) -> list[dict]:
    counts = result.rows.loc[result.rows["status"] != "invalid", "head"].value_counts()
    options = [{"label": f"all head groups ({int(counts.sum())} peaks)", "value": "all"}]
    options += [{"label": f"{head} ({count})", "value": head} for head, count in sorted(counts.items())]
    return options


def build_figure(result: AnalysisResult, head: str, plot: str, selected=()):
    rows = result.rows
    if plot == "observed":
        return figures.predicted_vs_observed(rows, selected)
    if plot == "residuals":
        return figures.residuals(rows, selected)
    return figures.rt_vs_logp(rows, None if head in (None, "all") else head, selected)


def truncation_note(result: AnalysisResult):
    if len(result.rows) <= GRID_ROW_LIMIT:
        return None
    return html.Small(
        f"Showing {GRID_ROW_LIMIT:,} of {len(result.rows):,} rows: outliers and flagged rows first. "
        "The CSV and XLSX downloads hold every row.",
        className="text-warning",
    )


def peaks_tab(result: AnalysisResult, head: str, plot: str) -> html.Div:
    column_defs = [
        {
            "field": field,
            "headerName": header,
            "width": width,
            "filter": kind,
            **({"cellRenderer": "StatusBadge"} if field == "status" else {}),
            **({"cellRenderer": "Flags"} if field == "flags" else {}),
            **({"pinned": "left"} if field in ("row", "name") else {}),
        }
        for field, header, width, kind in GRID_COLUMNS
    ] + [{"field": name, "headerName": name, "filter": "agTextColumnFilter"} for name in result.extra_columns]
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(
                        dcc.Dropdown(id=ids.HEAD_SELECT, options=head_options(result), value=head, clearable=False),
                        md=4,
                    ),
                    dbc.Col(
                        dbc.RadioItems(
                            id=ids.PLOT_TABS,
                            options=[
                                {"label": f"RT vs {figures.plot_axis(result.rows)[1]}" if k == "rt" else v, "value": k}
                                for k, v in PLOTS.items()
                            ],
                            value=plot,
                            inline=True,
                            className="pt-1",
                        ),
                        md=8,
                    ),
                ],
                className="mb-2 g-2",
            ),
            dcc.Loading(
                dcc.Graph(
                    id=ids.MAIN_GRAPH,
                    figure=build_figure(result, head, plot),
                    config={"displaylogo": False, "toImageButtonOptions": {"filename": "rt-check"}},
                ),
                delay_show=300,
            ),
            html.Small(
                "Click a point to select its row; box- or lasso-select several. Selecting rows in the table "
                "marks their points.",
                className="text-muted d-block mb-2",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Input(id=ids.QUICK_SEARCH, placeholder="search every column…", size="sm", debounce=0.3),
                        md=4,
                    ),
                    dbc.Col(truncation_note(result), md=8),
                ],
                className="mb-1",
            ),
            dag.AgGrid(
                id=ids.ROWS_GRID,
                rowData=grid_records(result),
                columnDefs=column_defs,
                defaultColDef={"sortable": True, "resizable": True, "floatingFilter": True},
                getRowId="params.data.key",
                dashGridOptions={
                    "rowSelection": {"mode": "multiRow", "enableClickSelection": True},
                    "animateRows": False,
                    "tooltipShowDelay": 300,
                    "pagination": False,
                },
                style={"height": "520px"},
                className="ag-theme-quartz",
            ),
        ]
    )


def simple_grid(frame: pd.DataFrame, grid_id: str, empty: str, height: int = 420) -> html.Div:
    if frame is None or frame.empty:
        return html.P(empty, className="text-muted")
    plain = frame.astype(object).where(frame.notna(), None)
    return dag.AgGrid(
        id=grid_id,
        rowData=plain.to_dict(orient="records"),
        columnDefs=[{"field": c, "filter": True, "sortable": True, "resizable": True} for c in frame.columns],
        style={"height": f"{height}px"},
        className="ag-theme-quartz",
        dashGridOptions={"animateRows": False},
    )


def _round(value, digits: int = 4):
    return round(value, digits) if isinstance(value, int | float) and math.isfinite(value) else "–"


def _scored(model: dict, fold: str) -> str:
    scored = model.get(f"{fold}_n_scored", 0)
    return f"{_round(model.get(f'{fold}_rmsep'))} ({scored} of {model['n_anchors_used']} anchors)"


def _unscored(model: dict, fold: str) -> str:
    """ "GD1+dHex 3 of 3, GD1 11 of 28": anchors needing a coefficient only their own group carries."""
    groups = model.get(f"{fold}_unscored", [])
    return ", ".join(f"{g['group']} {g['n_unscored']} of {g['n_anchors']}" for g in groups) or "none"


def _coverages(model: dict) -> str:
    return " / ".join(_percent(model.get(k)) for k in ("loo_coverage", "lopo_coverage", "lohgo_coverage"))


def model_tab(result: AnalysisResult) -> html.Div:
    model = result.models[0]
    if model.get("status") != "fitted":
        return dbc.Alert(["No model was fitted: ", model.get("reason", "")], color="warning")
    coefficient_rows = pd.DataFrame(model["coefficients"])[
        ["term", "label", "estimate", "std_error", "ci95_low", "ci95_high"]
    ].round(5)
    offsets = pd.DataFrame(model.get("head_group_offsets", []))
    metrics = pd.DataFrame(
        [
            ("anchors in the fit", model["n_anchors_used"]),
            ("anchors left out (screening)", model.get("n_excluded", 0)),
            ("residual SD σ (min)", round(model["residual_sd"], 4)),
            ("residual degrees of freedom", model["df_resid"]),
            ("RMSEP, leave one anchor out (min)", round(model["loo_rmsep"], 4)),
            ("RMSEP, leave its prefix out (min)", _scored(model, "lopo")),
            ("RMSEP, leave its head group out (min)", _scored(model, "lohgo")),
            ("RMSEP, every MS/MS-confirmed anchor (min)", _round(model.get("loo_rmsep_all_anchors"))),
            ("interval coverage: anchor / prefix / head group left out", _coverages(model)),
            ("LOO Q² (measures the anchors' RT spread)", round(model["loo_q2"], 5)),
            ("anchors a prefix fold cannot predict", _unscored(model, "lopo")),
            ("anchors a head-group fold cannot predict", _unscored(model, "lohgo")),
        ],
        columns=["figure", "value"],
    )
    components = pd.DataFrame(model.get("variance_components", []), columns=["component", "sd", "n", "method"])
    components["sd"] = components["sd"].round(4)
    ambiguity = pd.DataFrame(
        [
            {
                "prefix": a["prefix"],
                "term": e["term"],
                "effect if a isomers": round(e["as_a"], 3),
                "effect if b isomers": round(e["as_b"], 3),
                "rows affected": a["rows_affected"],
            }
            for a in model.get("series_ambiguity", [])
            for e in a["effects"]
        ]
    )
    coverage = pd.DataFrame(
        [
            {"main peaks": k, "n": v["n"], "inside": _percent(v["coverage"])}
            for k, v in model.get("main_peak_coverage", {}).items()
        ]
    )
    dropped = pd.DataFrame(model.get("dropped_terms", []), columns=["term", "reason"])
    down = pd.DataFrame(model.get("excluded_anchors", []), columns=["row", "name", "rt", "t_external"])
    baseline = result.models[1] if len(result.models) > 1 else {}
    return html.Div(
        [
            html.P(html.Code(model["formula"]), className="mb-2"),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            html.H6("Coefficients (± standard error, 95 % interval)"),
                            dbc.Table.from_dataframe(
                                coefficient_rows, size="sm", striped=True, className="table-compact"
                            ),
                            html.H6("Fit"),
                            dbc.Table.from_dataframe(metrics, size="sm", className="table-compact"),
                        ],
                        lg=6,
                    ),
                    dbc.Col(
                        [
                            dcc.Graph(figure=figures.coefficients(model), config={"displaylogo": False}),
                            html.H6("Head-group offsets"),
                            dbc.Table.from_dataframe(offsets.round(4), size="sm", className="table-compact")
                            if not offsets.empty
                            else html.P("none", className="text-muted"),
                        ],
                        lg=6,
                    ),
                ]
            ),
            html.H6("What each prediction's variance is made of"),
            html.P(
                "Every row carries these components (columns var_*). The anchors vouch for the residual and "
                "the coefficients; what they cannot know is calibrated on the peaks and the anchors left out.",
                className="small text-muted mb-1",
            ),
            dbc.Table.from_dataframe(components, size="sm", className="table-compact"),
            html.H6("Modification effects the isomer series can mimic"),
            dbc.Table.from_dataframe(ambiguity, size="sm", className="table-compact")
            if not ambiguity.empty
            else html.P("none", className="text-muted small"),
            html.H6("Main peaks of names without an anchor inside their interval"),
            dbc.Table.from_dataframe(coverage, size="sm", className="table-compact")
            if not coverage.empty
            else html.P("none", className="text-muted small"),
            html.H6("Terms left out"),
            dbc.Table.from_dataframe(dropped, size="sm", className="table-compact")
            if not dropped.empty
            else html.P("none", className="text-muted small"),
            html.H6("Anchors left out of the fit"),
            dbc.Table.from_dataframe(down, size="sm", className="table-compact")
            if not down.empty
            else html.P("none", className="text-muted small"),
            html.P(
                f"For comparison, one straight line of RT on Log P over the same anchors: LOO RMSEP "
                f"{_fmt(baseline.get('loo_rmsep'))} min."
                if result.summary.get("log_p_given", True)
                else "The table has no Log P column, so there is no Log P line to compare with (Log P is "
                "optional: the model uses the composition only).",
                className="small text-muted",
            ),
        ]
    )


OVERVIEW_LIMIT = 3_000  # peaks above which the page opens on one head group instead of all


def default_head(result: AnalysisResult) -> str:
    assessed = result.rows.loc[result.rows["status"] != "invalid", "head"]
    if len(assessed) <= OVERVIEW_LIMIT or assessed.empty:
        return "all"
    return str(assessed.value_counts().index[0])


def view_choice(result: AnalysisResult, query: dict) -> tuple[str, str, str]:
    """Head group, plot and tab from the address, falling back to the defaults.

    Large results open on their largest head group: drawing every group's panel at once takes
    the browser several seconds there, and the overview is one choice away in the dropdown.
    """
    head = query.get("head") or default_head(result)
    if head != "all" and head not in set(result.rows["head"].dropna()):
        head = "all"
    plot = query.get("plot") if query.get("plot") in PLOTS else "rt"
    tab = query.get("tab") if query.get("tab") in TABS else "peaks"
    return head, plot, tab


def tab_content(result: AnalysisResult, tab: str, head: str = "all", plot: str = "rt"):
    """One tab's content, built only when the tab is shown (large tables make every tab costly)."""
    if tab == "model":
        return model_tab(result)
    if tab == "fragments":
        return simple_grid(result.fragments, "fragments-grid", "No in-source fragments were found.")
    if tab == "oac":
        return html.Div(
            [
                html.P(
                    f"Median shift of consistent pairs: {_fmt(result.summary.get('oac_median_shift'))} min (reversed "
                    "phase: small and positive expected).",
                    className="small",
                ),
                simple_grid(result.oacetylation, "oac-grid", "No O-acetylated species."),
            ]
        )
    if tab == "isomers":
        return simple_grid(result.isomer_pairs, "isomers-grid", "No name has more than one peak.")
    if tab == "invalid":
        return simple_grid(result.invalid_rows(), "invalid-grid", "Every row was valid.")
    return peaks_tab(result, head, plot)


def results_view(job, result: AnalysisResult, filename: str, query: dict) -> html.Div:
    head, plot, tab = view_choice(result, query)
    return html.Div(
        [
            summary_cards(job, result, filename),
            status_explanation(),
            downloads(str(job.id)),
            dbc.Tabs(
                [dbc.Tab(label=label, tab_id=key) for key, label in TABS.items()], id=ids.MAIN_TABS, active_tab=tab
            ),
            html.Div(tab_content(result, tab, head, plot), id=ids.TAB_CONTENT, className="pt-2"),
        ]
    )
