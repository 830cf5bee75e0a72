"""Figures of one analysis result: pure functions from the result tables to Plotly figures.

Every function takes plain data (the per-row table, the summary dict, a model report) and
returns a new `go.Figure`; none does I/O or changes module state, so callbacks can call them
freely and tests can check them without a browser.

Plotted peaks carry their input row number in `customdata[0]`, so a click on any point can
find the row in the results table. Status is shown by colour (Okabe–Ito, safe for colour-blind
readers) and by marker symbol, so it stays readable in grey-scale prints.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from analysis.result import STATUSES


class StatusStyle(NamedTuple):
    colour: str
    symbol: str
    label: str


# Okabe–Ito colours; each status also has its own symbol so colour is never the only cue.
STATUS_STYLE: dict[str, StatusStyle] = {
    "valid": StatusStyle("#0072B2", "circle", "Valid"),
    "outlier": StatusStyle("#D55E00", "x", "Outlier"),
    "fragment": StatusStyle("#CC79A7", "triangle-down", "Fragment"),
    "unassessed": StatusStyle("#999999", "square", "Unassessed"),
    "invalid": StatusStyle("#000000", "cross", "Invalid"),
}
# The statuses the model judged: only these have a meaningful prediction to compare with.
JUDGED_STATUSES = ("valid", "outlier")

INTERVAL_COLOUR = "#7F7F7F"
ANCHOR_COLOUR = "#333333"
LINK_COLOUR = "#A0A0A0"
SELECTED_COLOUR = "#000000"
MARKER_SIZE = 8

# Above this many plotted points the browser draws with WebGL; SVG slows down past it.
WEBGL_THRESHOLD = 1000
NO_DATA_MESSAGE = "no assessed peaks"
RT_LABEL = "RT (min)"
FACET_COLUMNS = 4
FACET_ROW_HEIGHT = 260
FACET_GAP_PX = 70  # room between facet rows for the next row's panel title
LINK_COLUMNS = [
    "fragment_row",
    "precursor_row",
    "fragment_x",
    "fragment_y",
    "precursor_x",
    "precursor_y",
    "fragment_head",
    "precursor_head",
]

# Legend order: statuses first (in STATUSES order), then the overlays and guides.
LEGEND_RANK = {"anchor": 10, "selected": 11, "interval": 20, "identity": 21, "links": 22, "linked": 23}

FONT_FAMILY = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

HOVER_TEMPLATE = (
    "<b>%{customdata[1]}</b> · row %{customdata[0]}<br>"
    "%{customdata[2]}<br>"
    "RT %{customdata[3]}<br>"
    "%{customdata[4]}<br>"
    "%{customdata[5]}<br>"
    "<i>%{customdata[6]}</i><extra></extra>"
)
# The row fields the hover text is made from, and the customdata columns in HOVER_TEMPLATE's order.
HOVER_SOURCE_COLUMNS = [
    "name",
    "status",
    "head",
    "anchor",
    "rt",
    "predicted_rt",
    "pi_low",
    "pi_high",
    "residual",
    "reason",
    "flags",
]
HOVER_COLUMNS = ["row", "hover_name", "hover_status", "hover_rt", "hover_prediction", "hover_residual", "hover_reason"]
INTERVAL_HOVER_TEMPLATE = "<b>%{customdata[1]}</b> · row %{customdata[0]}<br>%{customdata[2]}<extra></extra>"


def _build_template() -> go.layout.Template:
    """plotly_white with the app's font and the Okabe–Ito colour cycle (a copy; the registry is untouched)."""
    template = go.layout.Template(pio.templates["plotly_white"])
    template.layout.update(
        font={"family": FONT_FAMILY, "size": 13, "color": "#212529"},
        colorway=OKABE_ITO,
        hoverlabel={"align": "left", "font": {"family": FONT_FAMILY}},
        hovermode="closest",
        legend={"groupclick": "togglegroup"},
        margin={"l": 70, "r": 20, "t": 70, "b": 60},
    )
    return template


TEMPLATE = _build_template()


# ---------------------------------------------------------------------------------------------
# Retention time against Log P
# ---------------------------------------------------------------------------------------------


def rt_vs_logp(rows: pd.DataFrame, head: str | None = None, selected_rows: Iterable[int] = ()) -> go.Figure:
    """RT against Log P for one head group, or every head group as small multiples sharing the RT axis.

    Each peak is a marker coloured and shaped by status; MS/MS anchors get a dark ring. The
    prediction is drawn per peak, not as a curve: a peak's predicted RT depends on its whole
    composition (carbons, double bonds, sugars, isomer series), not on Log P alone, so peaks of
    one head group at the same Log P can have different predictions. Each judged peak therefore
    has a grey tick at its predicted RT with a vertical bar spanning its prediction interval,
    drawn at the peak's own Log P: a marker outside its bar lies outside its interval. Fragments
    get no bar because the model does not judge them; instead a thin line joins each fragment to
    its precursor. A link is drawn in the panel of each of its ends; an end that belongs to
    another head group is shown as an open grey diamond at its own Log P (the line is then
    nearly horizontal: fragment and precursor co-elute).
    """
    x_field, x_label = plot_axis(rows)
    peaks = _with_hover_text(_plottable_peaks(rows, x_field))
    peaks = peaks.assign(plot_x=pd.to_numeric(peaks[x_field], errors="coerce"))
    if head is not None:
        in_head = peaks[peaks["head"] == head]
        revision = f"rt_vs_logp/{head}"
        if in_head.empty:
            return _message_figure(f"{NO_DATA_MESSAGE} in {head}", f"RT vs {x_label}: {head}", revision)
        heads = [head]
        title = f"RT vs {x_label}: {head}"
    else:
        revision = "rt_vs_logp/all"
        if peaks.empty:
            return _message_figure(NO_DATA_MESSAGE, f"RT vs {x_label}", revision)
        heads = _head_groups_in_order(peaks)
        title = f"RT vs {x_label} by head group"

    columns = min(FACET_COLUMNS, len(heads))
    grid_rows = math.ceil(len(heads) / columns)
    counts = peaks["head"].value_counts()
    height = FACET_ROW_HEIGHT * grid_rows + 130
    fig = make_subplots(
        rows=grid_rows,
        cols=columns,
        shared_yaxes="all",  # RT on one scale, so head groups compare at a glance
        specs=[[{} if r * columns + c < len(heads) else None for c in range(columns)] for r in range(grid_rows)],
        subplot_titles=[f"{name} · {counts[name]} peak{'s' if counts[name] != 1 else ''}" for name in heads],
        x_title=x_label,
        y_title=RT_LABEL,
        horizontal_spacing=0.06 if columns > 1 else 0.02,
        vertical_spacing=FACET_GAP_PX / height,
    )
    scatter = _scatter_class(_points_in_panels(peaks, heads))
    selected = _row_set(selected_rows)
    links = _fragment_links(peaks)
    shown: set[str] = set()
    for index, name in enumerate(heads):
        position = {"row": index // columns + 1, "col": index % columns + 1}
        for trace in _head_panel_traces(peaks, name, links, selected, scatter):
            trace.showlegend = trace.legendgroup not in shown
            shown.add(trace.legendgroup)
            fig.add_trace(trace, **position)
    _finish_layout(fig, title, revision, height=height)
    return fig


def _head_panel_traces(peaks, head, links, selected, scatter) -> list:
    """The traces of one head group's panel, bottom layer first."""
    in_head = peaks[peaks["head"] == head]
    judged = _with_prediction(in_head[in_head["status"] != "fragment"])
    panel_links = links[(links["fragment_head"] == head) | (links["precursor_head"] == head)]
    linked_elsewhere = _linked_peaks_outside(peaks, panel_links, head)
    return [
        *_interval_traces(judged, "plot_x", "predicted_rt", scatter),
        *_link_traces(panel_links, scatter),
        *_status_traces(in_head, "plot_x", "rt", scatter),
        *_anchor_traces(in_head, "plot_x", "rt", scatter),
        *_linked_elsewhere_traces(linked_elsewhere, scatter),
        *_selected_traces(in_head, "plot_x", "rt", selected, scatter),
    ]


def _head_groups_in_order(peaks: pd.DataFrame) -> list[str]:
    """Head groups by sialic acid count, then name (GM1, GM2, …, GD1, …, GT1, …)."""
    if "sialic" not in peaks:
        return sorted(peaks["head"].unique())
    order = peaks.groupby("head")["sialic"].min().reset_index().sort_values(["sialic", "head"])
    return order["head"].tolist()


def _points_in_panels(peaks: pd.DataFrame, heads: list[str]) -> int:
    return int(peaks["head"].isin(heads).sum())


def _fragment_links(peaks: pd.DataFrame) -> pd.DataFrame:
    """One row per fragment whose precursor is also plotted: both rows, positions and head groups."""
    if "fragment_of" not in peaks:
        return pd.DataFrame(columns=LINK_COLUMNS)
    fragments = peaks[(peaks["status"] == "fragment") & peaks["fragment_of"].notna()]
    by_row = peaks.set_index("row")
    fragments = fragments[fragments["fragment_of"].astype(int).isin(by_row.index)]
    precursors = by_row.loc[fragments["fragment_of"].astype(int)]
    columns = [
        fragments["row"],
        precursors.index,
        fragments["plot_x"],
        fragments["rt"],
        precursors["plot_x"],
        precursors["rt"],
        fragments["head"],
        precursors["head"],
    ]
    return pd.DataFrame({name: list(values) for name, values in zip(LINK_COLUMNS, columns, strict=True)})


def _linked_peaks_outside(peaks: pd.DataFrame, links: pd.DataFrame, head: str) -> pd.DataFrame:
    """Peaks of other head groups at the far end of this panel's fragment links."""
    ends = pd.concat(
        [
            links.loc[links["fragment_head"] != head, "fragment_row"],
            links.loc[links["precursor_head"] != head, "precursor_row"],
        ]
    )
    return peaks[peaks["row"].isin(ends)]


def _link_traces(links: pd.DataFrame, scatter) -> list:
    """Thin segments from each fragment to its precursor, gaps (None) between segments."""
    if links.empty:
        return []
    xs, ys, rows = [], [], []
    for link in links.itertuples(index=False):
        xs += [link.fragment_x, link.precursor_x, None]
        ys += [link.fragment_y, link.precursor_y, None]
        rows += [[link.fragment_row], [link.precursor_row], [None]]
    segments = scatter(
        x=xs,
        y=ys,
        customdata=rows,
        mode="lines",
        line={"color": LINK_COLOUR, "width": 1},
        name="fragment → precursor",
        legendgroup="links",
        visible="legendonly",  # many links clutter the panels: one click in the legend shows them
        legendrank=LEGEND_RANK["links"],
        hoverinfo="skip",
    )
    return [segments]


def _linked_elsewhere_traces(peaks: pd.DataFrame, scatter) -> list:
    """Open diamonds for linked peaks that belong to another head group's panel."""
    if peaks.empty:
        return []
    diamonds = scatter(
        x=peaks["plot_x"],
        y=peaks["rt"],
        customdata=_hover_data(peaks),
        hovertemplate=HOVER_TEMPLATE,
        mode="markers",
        marker={"symbol": "diamond-open", "size": MARKER_SIZE + 1, "color": LINK_COLOUR, "line": {"width": 1.5}},
        name="linked peak of another head group",
        legendgroup="linked",
        visible="legendonly",
        legendrank=LEGEND_RANK["linked"],
    )
    return [diamonds]


# ---------------------------------------------------------------------------------------------
# Model diagnostics
# ---------------------------------------------------------------------------------------------


def predicted_vs_observed(rows: pd.DataFrame, selected_rows: Iterable[int] = ()) -> go.Figure:
    """Observed against predicted RT of the judged peaks, with the identity line.

    Each peak's prediction interval is a grey vertical bar centred on the identity line at its
    predicted RT; the peak's marker lies outside its bar exactly when its RT is outside the interval.
    """
    title, revision = "Observed vs predicted RT", "predicted_vs_observed"
    judged = _with_hover_text(_judged_peaks(rows))
    if judged.empty:
        return _message_figure(NO_DATA_MESSAGE, title, revision)
    scatter = _scatter_class(len(judged))
    low = min(judged["predicted_rt"].min(), judged["rt"].min(), judged["pi_low"].min())
    high = max(judged["predicted_rt"].max(), judged["rt"].max(), judged["pi_high"].max())
    identity = scatter(
        x=[low, high],
        y=[low, high],
        mode="lines",
        line={"color": ANCHOR_COLOUR, "width": 1, "dash": "dash"},
        name="observed = predicted",
        legendgroup="identity",
        legendrank=LEGEND_RANK["identity"],
        hoverinfo="skip",
    )
    fig = go.Figure(
        [
            *_interval_traces(judged, "predicted_rt", "predicted_rt", scatter),
            identity,
            *_status_traces(judged, "predicted_rt", "rt", scatter),
            *_anchor_traces(judged, "predicted_rt", "rt", scatter),
            *_selected_traces(judged, "predicted_rt", "rt", _row_set(selected_rows), scatter),
        ]
    )
    fig.update_xaxes(title_text="predicted RT (min)")
    fig.update_yaxes(title_text="observed RT (min)")
    _finish_layout(fig, title, revision)
    return fig


def residuals(rows: pd.DataFrame, selected_rows: Iterable[int] = ()) -> go.Figure:
    """Residual (observed − predicted RT) against predicted RT of the judged peaks.

    The grey bar at each peak's predicted RT spans its prediction interval shifted to zero
    (−(predicted − PI low) to +(PI high − predicted)); a marker beyond its bar is outside its interval.
    """
    title, revision = "Residuals", "residuals"
    judged = _with_hover_text(_judged_peaks(rows))
    if judged.empty:
        return _message_figure(NO_DATA_MESSAGE, title, revision)
    scatter = _scatter_class(len(judged))
    fig = go.Figure(
        [
            *_interval_traces(judged.assign(zero=0.0), "predicted_rt", "zero", scatter),
            *_status_traces(judged, "predicted_rt", "residual", scatter),
            *_anchor_traces(judged, "predicted_rt", "residual", scatter),
            *_selected_traces(judged, "predicted_rt", "residual", _row_set(selected_rows), scatter),
        ]
    )
    fig.add_hline(y=0, line={"color": ANCHOR_COLOUR, "width": 1, "dash": "dash"})
    fig.update_xaxes(title_text="predicted RT (min)")
    fig.update_yaxes(title_text="residual: observed − predicted (min)")
    _finish_layout(fig, title, revision)
    return fig


def status_counts(summary: dict | None) -> go.Figure:
    """Number of peaks per status, in the fixed status order."""
    title, revision = "Peaks by status", "status_counts"
    counts = (summary or {}).get("counts") or {}
    if sum(counts.values()) == 0:
        return _message_figure(NO_DATA_MESSAGE, title, revision)
    statuses = [status for status in STATUSES if status in counts]
    values = [int(counts[status]) for status in statuses]
    fig = go.Figure(
        go.Bar(
            x=[STATUS_STYLE[status].label for status in statuses],
            y=values,
            text=values,
            textposition="outside",
            cliponaxis=False,
            marker={"color": [STATUS_STYLE[status].colour for status in statuses]},
            hovertemplate="%{x}: %{y} peaks<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_yaxes(title_text="peaks", rangemode="tozero")
    _finish_layout(fig, title, revision, height=300)
    return fig


def coefficients(model_report: dict | None) -> go.Figure:
    """Model terms and head-group offsets with 95 % intervals, in minutes of RT per unit.

    The intercept is left out (it sets the RT scale, not an effect, and would dwarf the rest);
    its value is given in the subtitle. Offsets get ±1.96 standard errors.
    """
    title, revision = "Model coefficients", "coefficients"
    if not model_report or model_report.get("status") != "fitted" or not model_report.get("coefficients"):
        reason = (model_report or {}).get("reason", "")
        return _message_figure(f"no fitted model{': ' + reason if reason else ''}", title, revision)
    terms = pd.DataFrame(model_report["coefficients"])
    intercept = terms[terms["term"] == "intercept"]
    terms = terms[terms["term"] != "intercept"]
    offsets = pd.DataFrame(model_report.get("head_group_offsets") or [], columns=["head", "offset", "std_error"])
    traces = [
        go.Scatter(
            x=terms["estimate"],
            y=terms["label"],
            error_x=_error_bars(terms["ci95_high"] - terms["estimate"], terms["estimate"] - terms["ci95_low"]),
            mode="markers",
            marker={"symbol": "circle", "size": MARKER_SIZE + 1, "color": OKABE_ITO[0]},
            name="term (95 % CI)",
            customdata=terms[["ci95_low", "ci95_high"]].to_numpy(),
            hovertemplate="%{y}: %{x:.4f} min (95 % CI %{customdata[0]:.4f} to %{customdata[1]:.4f})<extra></extra>",
        )
    ]
    if not offsets.empty:
        half_width = 1.96 * offsets["std_error"]
        traces.append(
            go.Scatter(
                x=offsets["offset"],
                y="head group " + offsets["head"],
                error_x=_error_bars(half_width, half_width),
                mode="markers",
                marker={"symbol": "diamond", "size": MARKER_SIZE + 1, "color": OKABE_ITO[2]},
                name="head-group offset (±1.96 SE)",
                hovertemplate="%{y}: %{x:+.3f} min<extra></extra>",
            )
        )
    fig = go.Figure(traces)
    fig.add_vline(x=0, line={"color": ANCHOR_COLOUR, "width": 1})
    fig.update_xaxes(title_text="effect on RT (min per unit)")
    fig.update_yaxes(autorange="reversed", automargin=True)
    _finish_layout(fig, title, revision, height=max(320, 28 * (len(terms) + len(offsets)) + 140))
    if not intercept.empty:
        value = f"{intercept['estimate'].iloc[0]:.2f}".replace("-", "−")
        fig.update_layout(title_subtitle_text=f"intercept {value} min, not shown")
    return fig


# ---------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------


def plot_axis(rows: pd.DataFrame | None) -> tuple[str, str]:
    """What the main plot puts across: Log P when the table has it, else the carbon number of the
    ceramide (the model's own leading term; Log P is optional)."""
    if rows is not None and "log_p" in rows and pd.to_numeric(rows["log_p"], errors="coerce").notna().any():
        return "log_p", "Log P"
    return "carbons", "carbon number"


def _plottable_peaks(rows: pd.DataFrame | None, x_field: str = "log_p") -> pd.DataFrame:
    """Rows that can be placed on the main plot: not invalid, with a head group, RT and x."""
    needed = {"row", "status", "head", "rt", x_field}
    if rows is None or rows.empty or not needed.issubset(rows.columns):
        return pd.DataFrame(columns=sorted(needed))
    keep = (
        (rows["status"] != "invalid")
        & rows["head"].notna()
        & pd.to_numeric(rows["rt"], errors="coerce").notna()
        & pd.to_numeric(rows[x_field], errors="coerce").notna()
    )
    return rows[keep]


def _judged_peaks(rows: pd.DataFrame | None) -> pd.DataFrame:
    """Valid and outlier rows with an RT, a prediction and its interval."""
    needed = {"row", "status", "rt", "predicted_rt", "pi_low", "pi_high", "residual"}
    if rows is None or rows.empty or not needed.issubset(rows.columns):
        return pd.DataFrame(columns=sorted(needed))
    judged = rows[rows["status"].isin(JUDGED_STATUSES) & rows["rt"].notna()]
    return _with_prediction(judged)


def _with_prediction(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["predicted_rt"].notna() & rows["pi_low"].notna() & rows["pi_high"].notna()]


def _row_set(selected_rows: Iterable[int] | None) -> set[int]:
    return set() if selected_rows is None else {int(row) for row in selected_rows}


def _scatter_class(n_points: int):
    """WebGL scatter for many points, SVG scatter otherwise (crisper, and every symbol renders)."""
    return go.Scattergl if n_points > WEBGL_THRESHOLD else go.Scatter


def _status_traces(peaks: pd.DataFrame, x: str, y: str, scatter) -> list:
    """One trace per status present, so each status has its own legend entry and symbol."""
    traces = []
    for status in STATUSES:
        members = peaks[peaks["status"] == status]
        if members.empty:
            continue
        style = STATUS_STYLE[status]
        traces.append(
            scatter(
                x=members[x],
                y=members[y],
                customdata=_hover_data(members),
                hovertemplate=HOVER_TEMPLATE,
                mode="markers",
                marker={
                    "symbol": style.symbol,
                    "color": style.colour,
                    "size": MARKER_SIZE,
                    "line": {"width": 0.5, "color": "#FFFFFF"},
                },
                name=style.label,
                legendgroup=f"status:{status}",
                legendrank=STATUSES.index(status) + 1,
            )
        )
    return traces


def _interval_traces(peaks: pd.DataFrame, x: str, centre: str, scatter) -> list:
    """A grey tick at `centre` with a bar spanning each row's prediction interval around it."""
    if peaks.empty:
        return []
    ticks = scatter(
        x=peaks[x],
        y=peaks[centre],
        error_y=_error_bars(peaks["pi_high"] - peaks["predicted_rt"], peaks["predicted_rt"] - peaks["pi_low"]),
        customdata=peaks[["row", "hover_name", "hover_prediction"]].to_numpy(dtype=object),
        hovertemplate=INTERVAL_HOVER_TEMPLATE,
        mode="markers",
        marker={"symbol": "line-ew-open", "size": MARKER_SIZE + 2, "color": INTERVAL_COLOUR, "line": {"width": 2}},
        opacity=0.8,
        name="predicted RT and prediction interval",
        legendgroup="interval",
        legendrank=LEGEND_RANK["interval"],
    )
    return [ticks]


def _error_bars(plus: pd.Series, minus: pd.Series) -> dict:
    return {
        "type": "data",
        "symmetric": False,
        "array": plus.to_numpy(dtype=float),
        "arrayminus": minus.to_numpy(dtype=float),
        "color": INTERVAL_COLOUR,
        "thickness": 1.5,
        "width": 0,
    }


def _anchor_traces(peaks: pd.DataFrame, x: str, y: str, scatter) -> list:
    """A dark ring around every MS/MS-confirmed anchor (hover passes through to the peak)."""
    anchors = peaks[peaks["anchor"].fillna(False).astype(bool)] if "anchor" in peaks else peaks.iloc[0:0]
    return _rings(anchors, x, y, scatter, "anchor", "MS/MS anchor", MARKER_SIZE + 7, ANCHOR_COLOUR, 1.5)


def _selected_traces(peaks: pd.DataFrame, x: str, y: str, selected: set[int], scatter) -> list:
    """A thick ring around the selected rows, above every other layer."""
    chosen = peaks[peaks["row"].isin(selected)]
    return _rings(chosen, x, y, scatter, "selected", "selected", MARKER_SIZE + 14, SELECTED_COLOUR, 3)


def _rings(peaks: pd.DataFrame, x: str, y: str, scatter, group: str, name: str, size, colour, width) -> list:
    """Open circles drawn over the given peaks; hover passes through to the peak beneath."""
    if peaks.empty:
        return []
    ring = scatter(
        x=peaks[x],
        y=peaks[y],
        customdata=peaks[["row"]].to_numpy(),
        mode="markers",
        marker={"symbol": "circle-open", "size": size, "color": colour, "line": {"width": width}},
        name=name,
        legendgroup=group,
        legendrank=LEGEND_RANK[group],
        hoverinfo="skip",
    )
    return [ring]


def _with_hover_text(peaks: pd.DataFrame) -> pd.DataFrame:
    """The rows plus pre-formatted hover text columns, computed once per figure."""
    fields = [column for column in HOVER_SOURCE_COLUMNS if column in peaks]
    records = peaks[fields].to_dict("records")
    return peaks.assign(
        hover_name=[html.escape(str(peak.get("name", ""))) for peak in records],
        hover_status=[_status_text(peak) for peak in records],
        hover_rt=[_minutes(peak.get("rt")) for peak in records],
        hover_prediction=[_prediction_text(peak) for peak in records],
        hover_residual=[_residual_text(peak) for peak in records],
        # Many points: the reason (long, and in the table anyway) would dominate the figure's size.
        hover_reason=[_reason_text(peak) for peak in records]
        if len(records) <= WEBGL_THRESHOLD
        else ["(reason in the table)"] * len(records),
    )


def _hover_data(peaks: pd.DataFrame) -> np.ndarray:
    """customdata per point: [row, name, status, RT, prediction, residual, reason]."""
    return peaks[HOVER_COLUMNS].to_numpy(dtype=object)


def _status_text(peak: dict) -> str:
    label = STATUS_STYLE[peak["status"]].label if peak["status"] in STATUS_STYLE else str(peak["status"])
    head = f" · {peak['head']}" if isinstance(peak.get("head"), str) else ""
    anchor = " · MS/MS anchor" if _is_true(peak.get("anchor")) else ""
    return f"{label}{head}{anchor}"


def _prediction_text(peak: dict) -> str:
    predicted, low, high = (peak.get(key) for key in ("predicted_rt", "pi_low", "pi_high"))
    if not _is_finite(predicted):
        return "no prediction"
    interval = f", PI {low:.3f}–{high:.3f} min" if _is_finite(low) and _is_finite(high) else ""
    return f"predicted {predicted:.3f} min{interval}"


def _residual_text(peak: dict) -> str:
    residual = peak.get("residual")
    return f"residual {residual:+.3f} min" if _is_finite(residual) else "residual —"


def _reason_text(peak: dict) -> str:
    """The verdict's reason and flags, escaped and wrapped so the hover box stays narrow."""
    reason = str(peak.get("reason") or "")
    flags = peak.get("flags")
    if isinstance(flags, list | tuple) and flags:
        reason = f"{reason} [flags: {', '.join(flags)}]"
    return "<br>".join(html.escape(line) for line in textwrap.wrap(reason, 70)) or "—"


def _minutes(value) -> str:
    return f"{value:.3f} min" if _is_finite(value) else "—"


def _is_finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _is_true(value) -> bool:
    return not pd.isna(value) and bool(value)


def _finish_layout(fig: go.Figure, title: str, revision: str, height: int | None = None) -> None:
    """The settings every figure shares: template, title, legend, and zoom kept across updates."""
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title, "x": 0.01, "xanchor": "left"},
        uirevision=revision,
        legend={"title": {"text": ""}, "itemsizing": "constant"},
        height=height,
    )


def _message_figure(message: str, title: str, revision: str) -> go.Figure:
    """An empty figure that says why there is nothing to show."""
    fig = go.Figure()
    fig.add_annotation(
        text="<br>".join(html.escape(line) for line in textwrap.wrap(message, 60)),
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 15, "color": "#6C757D"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    _finish_layout(fig, title, revision, height=300)
    return fig
