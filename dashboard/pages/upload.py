"""Upload page (/): check files at once, set parameters, analyse; the page then moves to the results."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging

import dash
import dash_bootstrap_components as dbc
from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from analysis.params import PARAMETER_SPECS, Parameters
from analysis.synthetic import generate_extract
from dashboard import ids
from dashboard.auth import client_address, current_account, upload_allowed
from dashboard.components import error_alert
from dashboard.services import services
from dashboard.submission import SubmissionError, check_email, parse_parameters
from store.jobs import stage_upload
from worker.control import JobControlError

dash.register_page(__name__, path="/", name="Upload", title="Upload · Ganglioside RT check", order=0)
log = logging.getLogger(__name__)

REPORT_ROWS = 200
EXAMPLE_NAME = "synthetic-example.csv"


def layout(**_query):
    # A distinct root id per page: React then mounts each page afresh instead of reusing
    # components (a grid of one page picking up the rows of the next).
    return html.Div(
        id="page-upload",
        children=[
            html.H2("Check a peak table"),
            html.P(
                [
                    "Upload peak tables with columns ",
                    html.B("Name, RT, Volume, Anchor"),
                    " and optionally ",
                    html.B("Log P"),
                    " (CSV, TSV or XLSX), or the export of MS-DIAL, MZmine, LipidSearch or Skyline as it is: "
                    "the layout is recognised and the columns it uses are listed under each file. "
                    "Each file is checked at once; nothing is analysed until you press Analyze. ",
                    html.A("How the analysis works", href=dash.get_relative_path("/methods")),
                ],
                className="text-muted",
            ),
            dcc.Upload(
                id=ids.UPLOAD,
                multiple=True,
                accept=".csv,.tsv,.txt,.xlsx",
                children=html.Div(
                    [
                        html.I(className="bi bi-cloud-arrow-up fs-3 d-block"),
                        "Drag and drop files here, or click to choose",
                    ],
                    className="drop-zone",
                ),
            ),
            html.Div(
                [
                    dbc.Button(
                        [html.I(className="bi bi-stars me-1"), "Try the example"],
                        id=ids.EXAMPLE_BUTTON,
                        color="secondary",
                        outline=True,
                        size="sm",
                        className="me-2",
                    ),
                    html.Small(
                        "A simulated extract of 300 peaks with known outliers and fragments.", className="text-muted"
                    ),
                ],
                className="my-2",
            ),
            html.Div(id=ids.UPLOAD_ALERT),
            dcc.Store(id=ids.STAGED, data=[]),
            html.Div(id=ids.FILE_CARDS, className="mb-3"),
            dbc.Button(
                [html.I(className="bi bi-sliders me-1"), "Parameters"],
                id=ids.PARAMS_TOGGLE,
                color="link",
                className="px-0",
            ),
            dbc.Collapse(parameter_form(), id=ids.PARAMS_COLLAPSE, is_open=False),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Input(
                            id=ids.NOTIFY_EMAIL,
                            type="email",
                            placeholder="e-mail me when it finishes (optional)",
                            size="sm",
                        ),
                        md=4,
                    ),
                    dbc.Col(
                        dbc.Button(
                            [html.I(className="bi bi-play-fill me-1"), "Analyze"],
                            id=ids.ANALYZE_BUTTON,
                            color="primary",
                            disabled=True,
                        ),
                        width="auto",
                    ),
                ],
                className="g-2 align-items-center my-2",
            ),
            dbc.Progress(id=ids.ANALYZE_BAR, value=0, label="", className="mb-1", style={"height": "1.4rem"}),
            html.Div(id=ids.ANALYZE_STATUS, className="small text-muted"),
        ],
    )


def parameter_form() -> dbc.Card:
    rows = []
    for spec in PARAMETER_SPECS:
        control_id = {"type": ids.PARAM_INPUT, "name": spec.name}
        if spec.choices:
            control = dbc.Select(
                id=control_id, value=spec.default, size="sm", options=[{"label": c, "value": c} for c in spec.choices]
            )
        else:
            control = dbc.Input(
                id=control_id,
                type="number",
                value=spec.default,
                size="sm",
                debounce=False,
                step="any" if spec.kind is float else 1,
            )
        unit = f" ({spec.unit})" if spec.unit and spec.unit != "×" else ""
        rows.append(
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Label(spec.name.replace("_", " ") + unit, html_for=f"param-{spec.name}", className="small"),
                        md=3,
                    ),
                    dbc.Col([control, dbc.FormFeedback(id={"type": ids.PARAM_FEEDBACK, "name": spec.name})], md=3),
                    dbc.Col(
                        html.Small(
                            f"{spec.help} Default {spec.default}; allowed {spec.describe_range()}.",
                            className="text-muted",
                        ),
                        md=6,
                    ),
                ],
                className="mb-1 align-items-center",
            )
        )
    return dbc.Card(dbc.CardBody(rows), className="mb-2")


@callback(
    Output(ids.PARAMS_COLLAPSE, "is_open"),
    Input(ids.PARAMS_TOGGLE, "n_clicks"),
    State(ids.PARAMS_COLLAPSE, "is_open"),
    prevent_initial_call=True,
)
def toggle_parameters(_clicks, is_open):
    return not is_open


@callback(
    Output({"type": ids.PARAM_INPUT, "name": ALL}, "invalid"),
    Output({"type": ids.PARAM_FEEDBACK, "name": ALL}, "children"),
    Input({"type": ids.PARAM_INPUT, "name": ALL}, "value"),
    State({"type": ids.PARAM_INPUT, "name": ALL}, "id"),
)
def validate_parameters(values, control_ids):
    """Check each parameter as it is typed, with the same rules the analysis applies."""
    messages = []
    for value, control in zip(values, control_ids, strict=True):
        try:
            Parameters.from_mapping({control["name"]: "" if value is None else value})
            messages.append("")
        except Exception as exc:  # ParameterError; an empty field is reported the same way
            messages.append(str(exc).split(": ", 1)[-1] if value not in (None, "") else "required")
    return [bool(m) for m in messages], messages


def _decode(content: str) -> bytes:
    try:
        return base64.b64decode(content.split(",", 1)[1], validate=False)
    except (IndexError, ValueError, binascii.Error):
        raise SubmissionError("unreadable", "the browser sent the file in a form that could not be read") from None


@callback(
    Output(ids.STAGED, "data"),
    Output(ids.FILE_CARDS, "children"),
    Output(ids.UPLOAD_ALERT, "children"),
    Input(ids.UPLOAD, "contents"),
    Input(ids.EXAMPLE_BUTTON, "n_clicks"),
    State(ids.UPLOAD, "filename"),
    State({"type": ids.PARAM_INPUT, "name": ALL}, "value"),
    State({"type": ids.PARAM_INPUT, "name": ALL}, "id"),
    prevent_initial_call=True,
)
def receive_files(contents, _example, filenames, values, control_ids):
    """Check every file as the analysis would, keep the readable ones, and show what was found."""
    found = services()
    try:
        params = _parameters(values, control_ids)
    except SubmissionError:
        params = Parameters()
    if dash.ctx.triggered_id == ids.EXAMPLE_BUTTON:
        files = [(EXAMPLE_NAME, generate_extract(300, seed=0).to_csv_bytes())]
    else:
        files = []
        for content, name in zip(contents or [], filenames or [], strict=False):
            try:
                files.append((name, _decode(content)))
            except SubmissionError as exc:
                files.append((name, exc))
    account = current_account()
    staged, cards = [], []
    for name, data in files:
        if isinstance(data, SubmissionError):
            cards.append(_file_card(name, None, error=data.message))
            continue
        try:
            if not account.may_write:
                raise SubmissionError("forbidden", "viewers can look at jobs but not upload files")
            if not upload_allowed(account):
                raise SubmissionError(
                    "rate_limited", f"more than {found.settings.upload_rate_limit} uploads; wait a while"
                )
            table = found.checker.check(
                name, data, params.replace(on_invalid_rows="skip"), found.settings.max_upload_bytes
            )
        except SubmissionError as exc:
            cards.append(_file_card(name, None, error=exc.message))
            continue
        upload_key = stage_upload(
            found.db, filename=name, content=data, sha256=hashlib.sha256(data).hexdigest(), owner_id=account.id
        )
        staged.append(
            {
                "upload_key": upload_key,
                "filename": name,
                "rows": table.n_rows,
                "invalid_rows": table.invalid_rows,
            }
        )
        cards.append(_file_card(name, table))
    alert = None
    if files and not staged:
        alert = error_alert(
            "none of the files can be analysed; see the problems listed for each.", "Nothing to analyse"
        )
    return staged, cards, alert


def _parameters(values, control_ids) -> Parameters:
    return parse_parameters({c["name"]: v for v, c in zip(values, control_ids, strict=True) if v not in (None, "")})


def _file_card(name: str, table, error: str | None = None) -> html.Div:
    if table is None:
        body = [
            html.H6([html.I(className="bi bi-x-circle text-danger me-1"), name]),
            dbc.Alert(error, color="danger", className="mb-0 py-2"),
        ]
        return html.Div(dbc.Card(dbc.CardBody(body), className="mb-2"), className="file-card", **{"data-file": name})
    bad_rows = table.invalid_rows
    header = [
        html.I(
            className="bi bi-check-circle text-success me-1"
            if not bad_rows
            else "bi bi-exclamation-triangle text-warning me-1"
        ),
        name,
        html.Small(
            f"  {table.n_rows:,} rows · {len(table.extra_columns)} extra columns · {table.file_format.upper()}",
            className="text-muted",
        ),
    ]
    preview = table.preview
    preview = preview.assign(anchor=preview["anchor"].map({True: "T", False: "F"}))  # React shows no booleans
    body = [
        html.H6(header),
        dbc.Table.from_dataframe(
            preview.astype(object).where(preview.notna(), ""),
            size="sm",
            bordered=False,
            striped=True,
            className="table-compact mb-2",
        ),
    ]
    for notice in table.notices:
        body.append(html.Div([html.I(className="bi bi-info-circle me-1"), notice], className="small text-muted"))
    if bad_rows:
        body.append(
            dbc.Alert(
                [
                    html.B(f"{bad_rows} of {table.n_rows} rows are invalid. "),
                    "With 'on invalid rows' = reject (the default) the file cannot be analysed until they are fixed; "
                    "with skip, the valid rows are analysed and these are listed as invalid.",
                ],
                color="warning",
                className="py-2 mb-2",
            )
        )
        report = [
            {"row": i.row, "column": i.column, "value": i.value, "reason": i.reason} for i in table.issues[:REPORT_ROWS]
        ]
        body.append(
            dbc.Table.from_dataframe(
                _frame(report), size="sm", bordered=True, className="table-compact validation-report mb-0"
            )
        )
        if table.n_issues > REPORT_ROWS:
            body.append(html.Small(f"… and {table.n_issues - REPORT_ROWS:,} more problems", className="text-muted"))
    return html.Div(dbc.Card(dbc.CardBody(body), className="mb-2"), className="file-card", **{"data-file": name})


def _frame(records):
    import pandas as pd

    return pd.DataFrame(records, columns=["row", "column", "value", "reason"])


@callback(
    Output(ids.ANALYZE_BUTTON, "disabled"),
    Input(ids.STAGED, "data"),
    Input({"type": ids.PARAM_INPUT, "name": ALL}, "invalid"),
    Input({"type": ids.PARAM_INPUT, "name": ALL}, "value"),
    Input(ids.ANALYZE_RUNNING, "data"),
    State({"type": ids.PARAM_INPUT, "name": ALL}, "id"),
)
def analyze_allowed(staged, invalid, values, running, control_ids):
    if running or not staged or any(invalid or []):
        return True
    policy = next((v for v, c in zip(values, control_ids, strict=True) if c["name"] == "on_invalid_rows"), "reject")
    return not any(item["invalid_rows"] == 0 or policy == "skip" for item in staged)


@callback(
    Output(ids.ANALYZE_RESULT, "data"),
    Input(ids.ANALYZE_BUTTON, "n_clicks"),
    State(ids.STAGED, "data"),
    State({"type": ids.PARAM_INPUT, "name": ALL}, "value"),
    State({"type": ids.PARAM_INPUT, "name": ALL}, "id"),
    State(ids.NOTIFY_EMAIL, "value"),
    background=True,
    running=[(Output(ids.ANALYZE_RUNNING, "data"), True, False)],
    prevent_initial_call=True,
)
def analyze(clicks, staged, values, control_ids, email):
    """Queue one job per file through job control, like the API, and return at once.

    The jobs run wherever API jobs run, with the same guarantees; the page follows them on the
    WebSocket stream (docs/design-notes.md, "The Analyze button").
    """
    if not clicks:
        raise PreventUpdate  # a page being mounted, not a click
    try:
        params = _parameters(values, control_ids)
        email = check_email(email)
    except SubmissionError as exc:
        return {"error": exc.message}
    runnable = [item for item in staged or [] if item["invalid_rows"] == 0 or params.on_invalid_rows == "skip"]
    if not runnable:
        return {"error": "no file can be analysed with these parameters"}
    jobs = services().jobs
    job_ids = []
    try:
        for item in runnable:
            event = jobs.submit_staged(
                item["upload_key"],
                parameters=params.to_dict(),
                notify_email=email,
                by=current_account(),
                address=client_address(),
            )
            job_ids.append(event.job_id)
    except JobControlError as exc:
        return {"error": exc.message, "job_ids": job_ids}
    return {"job_ids": job_ids, "href": dash.get_relative_path(f"/jobs/{job_ids[0]}")}


@callback(
    Output(ids.UPLOAD_ALERT, "children", allow_duplicate=True),
    Input(ids.ANALYZE_RESULT, "data"),
    prevent_initial_call=True,
)
def show_analysis_error(result):
    if result and result.get("error"):
        return error_alert(result["error"], "Could not analyse")
    return no_update


# The bar follows the queued jobs on the all-jobs stream (the bar's own id is an input so that
# this runs on this page only); at the end the page moves to the results.
clientside_callback(
    ClientsideFunction(namespace="rtcheck", function_name="analysisBar"),
    Output(ids.ANALYZE_BAR, "value"),
    Output(ids.ANALYZE_BAR, "label"),
    Output(ids.ANALYZE_STATUS, "children"),
    Input(ids.ANALYZE_RESULT, "data"),
    Input(ids.ALL_JOBS, "data"),
    Input(ids.ANALYZE_BAR, "id"),
)
clientside_callback(
    ClientsideFunction(namespace="rtcheck", function_name="analysisDone"),
    Output(ids.REDIRECT, "href"),
    Input(ids.ANALYZE_RESULT, "data"),
    Input(ids.ALL_JOBS, "data"),
    prevent_initial_call=True,
)
