"""Admin page (/admin, admins only): accounts with their roles, groups and state; the audit trail."""

from __future__ import annotations

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, html
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.auth import client_address, current_account
from dashboard.components import error_alert
from dashboard.services import services
from store import accounts, audit
from store.models import ROLES

dash.register_page(
    __name__, path="/admin", name="Admin", title="Admin · Ganglioside RT check", order=3, admin_only=True
)

AUDIT_COLUMNS = [
    {
        "field": "ts",
        "headerName": "when (UTC)",
        "width": 180,
        "valueFormatter": {"function": "params.value ? params.value.slice(0, 19).replace('T', ' ') : ''"},
    },
    {"field": "actor", "headerName": "who", "width": 160},
    {"field": "action", "width": 150},
    {"field": "target", "flex": 1, "minWidth": 240},
    {"field": "address", "headerName": "from", "width": 140},
    {"field": "details", "flex": 1, "minWidth": 160},
]


def layout(**_query):
    account = current_account()
    if account is None or not account.is_admin:
        return dbc.Alert("This page is for admins.", color="warning", id="page-admin")
    return html.Div(
        id="page-admin",
        children=[
            html.H2("Admin"),
            html.Div(id=ids.ADMIN_ALERT),
            dbc.Row(
                [
                    dbc.Col([html.H5("Accounts"), html.Div(users_table(), id=ids.ADMIN_USERS)], lg=6),
                    dbc.Col([change_form(), add_form()], lg=6),
                ],
                class_name="mb-4",
            ),
            html.H5("Audit trail (newest first)"),
            dag.AgGrid(
                id=ids.ADMIN_AUDIT,
                columnDefs=AUDIT_COLUMNS,
                rowData=audit_rows(),
                defaultColDef={"sortable": True, "filter": True, "resizable": True},
                style={"height": "420px"},
                className="ag-theme-quartz",
            ),
        ],
    )


def users_table():
    rows = [
        html.Tr(
            [
                html.Td(a.username),
                html.Td(a.role),
                html.Td(a.group or "–"),
                html.Td("disabled" if a.disabled else "active", className="text-danger" if a.disabled else ""),
            ]
        )
        for a in accounts.list_accounts(services().db)
    ]
    head = html.Thead(html.Tr([html.Th("user"), html.Th("role"), html.Th("group"), html.Th("state")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", striped=True, class_name="small")


def user_options():
    return [{"label": a.username, "value": a.username} for a in accounts.list_accounts(services().db)]


def change_form():
    return dbc.Card(
        dbc.CardBody(
            [
                html.H6("Change an account"),
                dbc.Label("Account", html_for=ids.ADMIN_USER),
                dbc.Select(id=ids.ADMIN_USER, options=user_options(), class_name="mb-2"),
                dbc.Label("Role", html_for=ids.ADMIN_ROLE),
                dbc.Select(id=ids.ADMIN_ROLE, options=[{"label": r, "value": r} for r in ROLES], class_name="mb-2"),
                dbc.Label("Group (empty: none)", html_for=ids.ADMIN_GROUP),
                dbc.Input(id=ids.ADMIN_GROUP, class_name="mb-2"),
                dbc.Button("Apply role and group", id=ids.ADMIN_APPLY, color="primary", class_name="me-2"),
                dbc.Button("Disable", id=ids.ADMIN_DISABLE, color="outline-danger", class_name="me-2"),
                dbc.Button("Enable", id=ids.ADMIN_ENABLE, color="outline-secondary"),
            ]
        ),
        class_name="mb-3",
    )


def add_form():
    return dbc.Card(
        dbc.CardBody(
            [
                html.H6("Add an account (role and group from the form above)"),
                dbc.Label("User name", html_for=ids.ADMIN_NEW_NAME),
                dbc.Input(id=ids.ADMIN_NEW_NAME, class_name="mb-2"),
                dbc.Label(
                    f"First password (at least {accounts.MIN_PASSWORD_LENGTH} characters)",
                    html_for=ids.ADMIN_NEW_PASSWORD,
                ),
                dbc.Input(id=ids.ADMIN_NEW_PASSWORD, type="password", autocomplete="new-password", class_name="mb-2"),
                dbc.Button("Add account", id=ids.ADMIN_ADD, color="primary"),
            ]
        )
    )


def audit_rows(limit: int = 500) -> list[dict]:
    return [
        {**entry.to_dict(), "details": " ".join(f"{k}={v}" for k, v in entry.detail.items())}
        for entry in audit.recent(services().db, limit=limit)
    ]


@callback(
    Output(ids.ADMIN_ALERT, "children"),
    Output(ids.ADMIN_USERS, "children"),
    Output(ids.ADMIN_AUDIT, "rowData"),
    Output(ids.ADMIN_USER, "options"),
    Input(ids.ADMIN_APPLY, "n_clicks"),
    Input(ids.ADMIN_DISABLE, "n_clicks"),
    Input(ids.ADMIN_ENABLE, "n_clicks"),
    Input(ids.ADMIN_ADD, "n_clicks"),
    State(ids.ADMIN_USER, "value"),
    State(ids.ADMIN_ROLE, "value"),
    State(ids.ADMIN_GROUP, "value"),
    State(ids.ADMIN_NEW_NAME, "value"),
    State(ids.ADMIN_NEW_PASSWORD, "value"),
    prevent_initial_call=True,
)
def change_accounts(_apply, _disable, _enable, _add, username, role, group, new_name, new_password):
    admin = current_account()
    if admin is None or not admin.is_admin:
        raise PreventUpdate
    db = services().db
    trigger = dash.ctx.triggered_id
    try:
        if trigger == ids.ADMIN_ADD:
            made = accounts.add_user(
                db,
                (new_name or "").strip(),
                new_password or "",
                role=role or "analyst",
                group=(group or "").strip() or None,
            )
            done, action, target, detail = f"added {made.username}", "user_added", made.username, {"role": made.role}
        else:
            if not username:
                raise accounts.AccountError("choose an account first")
            demoting = trigger == ids.ADMIN_APPLY and role not in (None, "", "admin")
            if username == admin.username and (trigger == ids.ADMIN_DISABLE or demoting):
                raise accounts.AccountError("you cannot disable your own account or take away your own admin role")
            if trigger == ids.ADMIN_APPLY:
                detail = {}
                if role:
                    accounts.set_role(db, username, role)
                    detail["role"] = role
                accounts.set_group(db, username, (group or "").strip() or None)
                detail["group"] = (group or "").strip() or None
                done, action = f"{username}: role and group saved", "role_changed"
            else:
                disable = trigger == ids.ADMIN_DISABLE
                accounts.set_disabled(db, username, disable)
                done, action, detail = (
                    f"{username} {'disabled' if disable else 'enabled'}",
                    ("user_disabled" if disable else "user_enabled"),
                    {},
                )
            target = username
    except accounts.AccountError as exc:
        return error_alert(f"{exc}.", "Not changed"), dash.no_update, dash.no_update, dash.no_update
    audit.record(
        db, actor=admin.username, action=action, target=f"user {target}", detail=detail, address=client_address()
    )
    alert = dbc.Alert(done, color="success", dismissable=True, duration=5000)
    return alert, users_table(), audit_rows(), user_options()
