"""Job page (/jobs/<id>): live progress while it runs, then the results, without a reload."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.auth import client_address, current_account
from dashboard.components import error_alert, status_badge
from dashboard.results_view import build_figure, cached_result, results_view, tab_content, view_choice
from dashboard.services import services
from store.jobs import get_job, get_upload
from store.models import JobStatus
from worker.control import JobControlError

dash.register_page(__name__, path_template="/jobs/<job_id>", name="Job", title="Job · Ganglioside RT check", nav=False)

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
ENDED_UNFINISHED = (JobStatus.FAILED, JobStatus.CANCELLED)  # may be retried


def layout(job_id: str | None = None, **query):
    found = services()
    job = get_job(found.db, job_id, visible_to=current_account()) if job_id else None
    if job is None:
        return dbc.Alert(
            [
                html.H5("No such job"),
                html.P(f"There is no job {job_id}. It may have been deleted, or the link is wrong."),
                dcc.Link("See all jobs", href=dash.get_relative_path("/jobs")),
            ],
            color="warning",
        )
    upload = get_upload(found.db, job.upload_id)
    filename = upload.filename if upload else "(file deleted)"
    succeeded = job.status == JobStatus.SUCCEEDED
    results = None
    if succeeded:
        result = cached_result(found.db, str(job.id), job.event_seq)
        results = results_view(job, result, filename, query)
    # A distinct root id per page: React then mounts each page afresh instead of reusing
    # components (a grid of one page picking up the rows of the next).
    return html.Div(
        id="page-job",
        children=[
            dcc.Store(id=ids.JOB_ID, data=str(job.id)),
            dcc.Store(id=ids.VIEW_STATE, data=query),
            dcc.Store(id=ids.JOB_WATCH),
            dcc.Store(id=ids.JOB_REQUEUED),
            html.Div(
                [
                    html.H3(
                        [filename, " ", status_badge(job.status)], className="d-inline-block me-3", id=ids.JOB_TITLE
                    ),
                    dbc.Button(
                        "Cancel",
                        id=ids.CANCEL_BUTTON,
                        color="outline-danger",
                        size="sm",
                        className="me-1",
                        style={} if job.status in ACTIVE else {"display": "none"},
                    ),
                    dbc.Button(
                        "Retry",
                        id=ids.RETRY_BUTTON,
                        color="outline-primary",
                        size="sm",
                        style={} if job.status in ENDED_UNFINISHED else {"display": "none"},
                    ),
                ],
                className="mb-2",
            ),
            html.Div(id=ids.JOB_ALERT, children=_failure_alert(job)),
            html.Div(
                [
                    dbc.Progress(
                        id=ids.JOB_PROGRESS_BAR,
                        value=job.progress_percent,
                        label=f"{job.progress_percent}%",
                        striped=True,
                        animated=job.status in ACTIVE,
                        style={"height": "1.4rem"},
                        className="mb-2",
                    ),
                    html.Div(id=ids.JOB_TRANSPORT, className="small text-muted mb-1"),
                    html.Pre(job.progress_message, id=ids.JOB_LOG, className="progress-log"),
                ],
                id=ids.JOB_PROGRESS,
                style={"display": "none"} if succeeded else {},
            ),
            html.Div(results, id=ids.JOB_RESULTS),
        ],
    )


def _failure_alert(job):
    if job.status == JobStatus.FAILED:
        return dbc.Alert([html.B("The analysis failed: "), job.error or job.progress_message], color="danger")
    if job.status == JobStatus.CANCELLED:
        return dbc.Alert("This job was cancelled.", color="secondary")
    return None


# Follow the job as soon as the page shows it, and again after a retry (the script reconnects
# and falls back to polling by itself); draw its progress from the stream's store.
clientside_callback(
    ClientsideFunction(namespace="rtcheck", function_name="watchJob"),
    Output(ids.JOB_WATCH, "data"),
    Input(ids.JOB_ID, "data"),
    Input(ids.JOB_REQUEUED, "data"),
)

clientside_callback(
    ClientsideFunction(namespace="rtcheck", function_name="jobProgress"),
    Output(ids.JOB_PROGRESS_BAR, "value"),
    Output(ids.JOB_PROGRESS_BAR, "label"),
    Output(ids.JOB_LOG, "children"),
    Output(ids.JOB_TRANSPORT, "children"),
    Output(ids.JOB_PROGRESS_BAR, "animated"),
    Input(ids.JOB_EVENTS, "data"),
    State(ids.JOB_ID, "data"),
)


@callback(
    Output(ids.JOB_RESULTS, "children"),
    Output(ids.JOB_PROGRESS, "style"),
    Output(ids.JOB_ALERT, "children"),
    Output(ids.JOB_TITLE, "children"),
    Output(ids.CANCEL_BUTTON, "style"),
    Output(ids.RETRY_BUTTON, "style"),
    Input(ids.JOB_EVENTS, "data"),
    State(ids.JOB_ID, "data"),
    State(ids.JOB_RESULTS, "children"),
    prevent_initial_call=True,
)
def show_outcome(events, job_id, shown):
    """When the stream reports the end, show the results (or why there are none) in place."""
    if not events or events.get("job_id") != job_id:
        return (no_update,) * 6
    found = services()
    job = get_job(found.db, job_id, visible_to=current_account())
    if job is None:
        return None, {"display": "none"}, error_alert("the job was deleted."), no_update, no_update, no_update
    upload = get_upload(found.db, job.upload_id)
    filename = upload.filename if upload else "(file deleted)"
    title = [filename, " ", status_badge(job.status)]
    hide, show = {"display": "none"}, {}
    buttons = (show if job.status in ACTIVE else hide, show if job.status in ENDED_UNFINISHED else hide)
    if job.status == JobStatus.SUCCEEDED and not shown:
        result = cached_result(found.db, job_id, job.event_seq)
        return results_view(job, result, filename, {}), hide, None, title, *buttons
    if job.status in ENDED_UNFINISHED:
        return no_update, show, _failure_alert(job), title, *buttons
    if job.status in ACTIVE:  # queued or running (again, after a retry): the bar, no old alert
        return no_update, show, None, title, *buttons
    return no_update, no_update, no_update, title, *buttons


@callback(
    Output(ids.JOB_ALERT, "children", allow_duplicate=True),
    Output(ids.JOB_REQUEUED, "data"),
    Input(ids.CANCEL_BUTTON, "n_clicks"),
    Input(ids.RETRY_BUTTON, "n_clicks"),
    State(ids.JOB_ID, "data"),
    prevent_initial_call=True,
)
def cancel_or_retry(_cancel, _retry, job_id):
    """Through job control, like the API; the stream then updates the page by itself."""
    jobs = services().jobs
    try:
        if dash.ctx.triggered_id == ids.CANCEL_BUTTON:
            jobs.cancel(job_id, by=current_account(), address=client_address())
            return dbc.Alert("Cancelled.", color="secondary"), no_update
        event = jobs.retry(job_id, by=current_account(), address=client_address())
        return dbc.Alert("Queued again.", color="info", duration=4000), event.seq
    except JobControlError as exc:
        return error_alert(exc.message, "Not possible"), no_update


@callback(
    Output(ids.MAIN_GRAPH, "figure"),
    Input(ids.ROWS_GRID, "selectedRows"),
    Input(ids.HEAD_SELECT, "value"),
    Input(ids.PLOT_TABS, "value"),
    State(ids.JOB_ID, "data"),
    prevent_initial_call=True,
)
def redraw(selected, head, plot, job_id):
    """The plot follows the head group, the kind of plot, and the rows selected in the table."""
    return build_figure(visible_result(job_id), head, plot, selected_row_numbers(selected))


def visible_result(job_id: str):
    """The results of a job the caller may see; nothing changes for any other id a page sends."""
    found = services()
    job = get_job(found.db, job_id, visible_to=current_account())
    result = cached_result(found.db, job_id, job.event_seq) if job is not None else None
    if result is None:
        raise PreventUpdate
    return result


def selected_row_numbers(selected) -> list[int]:
    """Rows picked in the grid carry their data; rows picked from the plot only their key."""
    return [int(item.get("row", item.get("key"))) for item in selected or []]


@callback(
    Output(ids.ROWS_GRID, "selectedRows"),
    Output(ids.ROWS_GRID, "scrollTo"),
    Input(ids.MAIN_GRAPH, "clickData"),
    Input(ids.MAIN_GRAPH, "selectedData"),
    prevent_initial_call=True,
)
def select_from_plot(click, box):
    """A click on a point selects its row (and scrolls to it); a box or lasso selects many."""
    data = click if f"{ids.MAIN_GRAPH}.clickData" in dash.ctx.triggered_prop_ids else box
    points = (data or {}).get("points", [])
    rows = sorted({int(p["customdata"][0]) for p in points if p.get("customdata")})
    if not rows:
        return no_update, no_update
    return [{"key": str(row)} for row in rows], {"rowId": str(rows[0]), "rowPosition": "middle"}


@callback(
    Output(ids.TAB_CONTENT, "children"),
    Input(ids.MAIN_TABS, "active_tab"),
    State(ids.VIEW_STATE, "data"),
    State(ids.JOB_ID, "data"),
    prevent_initial_call=True,
)
def show_tab(tab, view, job_id):
    """Build a tab when it is chosen, keeping the head group and plot the address remembers."""
    result = visible_result(job_id)
    head, plot, _ = view_choice(result, view or {})
    return tab_content(result, tab, head, plot)


@callback(
    Output(ids.ROWS_GRID, "dashGridOptions"),
    Input(ids.QUICK_SEARCH, "value"),
    State(ids.ROWS_GRID, "dashGridOptions"),
    prevent_initial_call=True,
)
def quick_search(text, options):
    return {**(options or {}), "quickFilterText": text or ""}


# Keep the head group, plot and tab in the address (replaceState: no page reload, shareable link),
# and in a store the tab callback reads. Two callbacks: the selectors exist on the Peaks tab only.
clientside_callback(
    ClientsideFunction(namespace="rtcheck", function_name="rememberPeaksView"),
    Output(ids.VIEW_STATE, "data"),
    Input(ids.HEAD_SELECT, "value"),
    Input(ids.PLOT_TABS, "value"),
    prevent_initial_call=True,
)
clientside_callback(
    ClientsideFunction(namespace="rtcheck", function_name="rememberTab"),
    Output(ids.VIEW_STATE, "data", allow_duplicate=True),
    Input(ids.MAIN_TABS, "active_tab"),
    Input(ids.MAIN_TABS, "id"),
    prevent_initial_call=True,
)

clientside_callback(
    ClientsideFunction(namespace="rtcheck", function_name="downloadImage"),
    Output(ids.FIGURE_PNG_BUTTON, "title"),
    Input(ids.FIGURE_PNG_BUTTON, "n_clicks"),
    Input(ids.FIGURE_SVG_BUTTON, "n_clicks"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.DOWNLOAD_FIGURE, "data"),
    Input(ids.FIGURE_HTML_BUTTON, "n_clicks"),
    State(ids.HEAD_SELECT, "value"),
    State(ids.PLOT_TABS, "value"),
    State(ids.ROWS_GRID, "selectedRows"),
    State(ids.JOB_ID, "data"),
    prevent_initial_call=True,
)
def figure_as_html(_clicks, head, plot, selected, job_id):
    """The figure as a standalone interactive HTML file (plotly.js embedded; no internet needed)."""
    figure = build_figure(visible_result(job_id), head, plot, selected_row_numbers(selected))
    return {"content": figure.to_html(include_plotlyjs=True, full_html=True), "filename": f"rt-check-{plot}.html"}
