"""Jobs page (/jobs): every job, live from /ws/jobs; queue depth and workers; cancel, retry, delete."""

from __future__ import annotations

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html, no_update

from dashboard import ids
from dashboard.auth import client_address, current_account
from dashboard.components import error_alert
from dashboard.services import services
from store.models import JOB_STATUSES
from worker.control import JobControlError

dash.register_page(__name__, path="/jobs", name="Jobs", title="Jobs · Ganglioside RT check", order=1)

COLUMNS = [
    {"field": "status", "width": 120, "cellRenderer": "StatusBadge", "filter": "agTextColumnFilter"},
    {
        "field": "filename",
        "headerName": "file",
        "width": 240,
        "cellRenderer": "JobLink",
        "filter": "agTextColumnFilter",
    },
    {"field": "percent", "headerName": "progress", "width": 170, "cellRenderer": "ProgressBar"},
    {"field": "message", "headerName": "step", "flex": 1, "minWidth": 240, "tooltipField": "message"},
    {
        "field": "created_at",
        "headerName": "created (UTC)",
        "width": 170,
        "valueFormatter": {"function": "params.value ? params.value.slice(0, 19).replace('T', ' ') : ''"},
        "sort": "desc",
    },
    {"field": "duration_seconds", "headerName": "duration (s)", "width": 120, "type": "numericColumn"},
    {"field": "attempts", "width": 100, "type": "numericColumn"},
    {"field": "worker", "width": 170},
    {"field": "id", "headerName": "job id", "width": 300},
]


def layout(**_query):
    flower = services().settings.flower_url
    # A distinct root id per page: React then mounts each page afresh instead of reusing
    # components (a grid of one page picking up the rows of the next).
    return html.Div(
        id="page-jobs",
        children=[
            html.Div(
                [
                    html.H2("Jobs", className="d-inline-block me-3"),
                    html.Span(id=ids.JOBS_TRANSPORT, className="small text-muted"),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(html.Div(id=ids.JOBS_HEALTH, className="small"), md=8),
                    dbc.Col(
                        html.A(
                            [html.I(className="bi bi-flower1 me-1"), "Flower"],
                            href=flower,
                            target="_blank",
                            className="small",
                        )
                        if flower
                        else None,
                        md=4,
                        className="text-end",
                    ),
                ],
                className="mb-2",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Checklist(
                            id=ids.JOBS_STATUS_FILTER,
                            options=list(JOB_STATUSES),
                            value=[],
                            inline=True,
                            className="small",
                        ),
                        md=6,
                    ),
                    dbc.Col(
                        dbc.Input(
                            id=ids.JOBS_SEARCH, placeholder="search file names and steps…", size="sm", debounce=0.3
                        ),
                        md=3,
                    ),
                    dbc.Col(
                        [
                            dbc.Button(
                                "Cancel", id=ids.JOBS_CANCEL, size="sm", color="outline-secondary", className="me-1"
                            ),
                            dbc.Button(
                                "Retry", id=ids.JOBS_RETRY, size="sm", color="outline-primary", className="me-1"
                            ),
                            dbc.Button("Delete", id=ids.JOBS_DELETE, size="sm", color="outline-danger"),
                        ],
                        md=3,
                        className="text-end",
                    ),
                ],
                className="mb-2 g-2 align-items-center",
            ),
            html.Div(id=ids.JOBS_ALERT),
            dcc.ConfirmDialog(id=ids.JOBS_CONFIRM_DELETE, message="Delete the selected jobs and all their results?"),
            dag.AgGrid(
                id=ids.JOBS_GRID,
                rowData=[],
                columnDefs=COLUMNS,
                getRowId="params.data.id",
                defaultColDef={"sortable": True, "resizable": True},
                dashGridOptions={
                    "rowSelection": {"mode": "multiRow", "enableClickSelection": True},
                    "animateRows": True,
                    "tooltipShowDelay": 300,
                },
                style={"height": "560px"},
                className="ag-theme-quartz",
            ),
            dcc.Interval(id=ids.JOBS_HEALTH_TIMER, interval=5000),
        ],
    )


# Live rows: the socket's store (root layout) → the grid, filtered on the client.
clientside_callback(
    ClientsideFunction(namespace="rtcheck", function_name="jobRows"),
    Output(ids.JOBS_GRID, "rowData"),
    Output(ids.JOBS_TRANSPORT, "children"),
    Input(ids.ALL_JOBS, "data"),
    Input(ids.JOBS_STATUS_FILTER, "value"),
    Input(ids.JOBS_SEARCH, "value"),
)

clientside_callback(
    ClientsideFunction(namespace="rtcheck", function_name="watchAllJobs"),
    Output(ids.JOBS_GRID, "className"),
    Input(ids.JOBS_GRID, "id"),
)


@callback(Output(ids.JOBS_HEALTH, "children"), Input(ids.JOBS_HEALTH_TIMER, "n_intervals"))
def show_health(_n):
    """Queue depth, workers and backends, from the same checks /api/health makes."""
    from dashboard.api import health_response

    report = health_response().get_json()
    counts = report.get("jobs") or {}
    workers = report["workers"]["names"]
    parts = [
        html.Span(f"{report['mode']} mode", className="badge text-bg-light border me-2"),
        html.Span(
            ["queue depth ", html.B(report.get("queue_depth") if report.get("queue_depth") is not None else "unknown")],
            className="me-3",
        ),
        html.Span(
            ["workers ", html.B(len(workers)), f" ({', '.join(workers)})" if workers else " (none online)"],
            className="me-3 " + ("" if workers else "text-danger"),
        ),
        html.Span(" · ".join(f"{k} {v}" for k, v in sorted(counts.items())), className="text-muted"),
    ]
    if not report["database"]["ok"]:
        parts.append(html.Span(" database unavailable", className="text-danger ms-2"))
    if report.get("redis") and not report["redis"]["ok"]:
        parts.append(html.Span(" Redis unavailable", className="text-danger ms-2"))
    return parts


@callback(
    Output(ids.JOBS_CONFIRM_DELETE, "displayed"),
    Input(ids.JOBS_DELETE, "n_clicks"),
    State(ids.JOBS_GRID, "selectedRows"),
    prevent_initial_call=True,
)
def confirm_delete(_n, selected):
    return bool(selected)


@callback(
    Output(ids.JOBS_ALERT, "children"),
    Output(ids.JOBS_GRID, "deselectAll"),
    Input(ids.JOBS_CANCEL, "n_clicks"),
    Input(ids.JOBS_RETRY, "n_clicks"),
    Input(ids.JOBS_CONFIRM_DELETE, "submit_n_clicks"),
    State(ids.JOBS_GRID, "selectedRows"),
    prevent_initial_call=True,
)
def act_on_selection(_cancel, _retry, _delete, selected):
    """Cancel, retry or delete the selected jobs; the stream then updates the grid by itself."""
    if not selected:
        return dbc.Alert("Select one or more jobs first.", color="info", dismissable=True, duration=4000), no_update
    action = {ids.JOBS_CANCEL: "cancel", ids.JOBS_RETRY: "retry", ids.JOBS_CONFIRM_DELETE: "delete"}[
        dash.ctx.triggered_id
    ]
    perform = getattr(services().jobs, action)
    done, refused = 0, []
    for row in selected:
        try:
            perform(row["id"], by=current_account(), address=client_address())
            done += 1
        except JobControlError as exc:
            refused.append(f"{row.get('filename')}: {exc.message}")
    message = f"{action}: {done} job{'s' if done != 1 else ''}"
    if refused:
        return error_alert("; ".join(refused), f"{message}; not possible for"), True
    return dbc.Alert(message, color="success", dismissable=True, duration=4000), True
