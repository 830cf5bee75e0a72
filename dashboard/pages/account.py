"""Account page (/account): change one's password; create and revoke personal API tokens."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
import flask_login
from dash import ALL, Input, Output, State, callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.auth import SignedIn, client_address, current_account
from dashboard.components import error_alert
from dashboard.services import services
from store import accounts, audit

dash.register_page(__name__, path="/account", name="Account", title="Account · Ganglioside RT check", nav=False)


def layout(**_query):
    account = current_account()
    if account is None or account.id is None:
        return dbc.Alert(
            "Single-user mode (AUTH_REQUIRED=false): there are no accounts on this server.",
            color="secondary",
            id="page-account",
        )
    group = f", group {account.group}" if account.group else ""
    return html.Div(
        id="page-account",
        style={"maxWidth": "48rem"},
        children=[
            html.H2("Account"),
            html.P(f"Signed in as {account.username} ({account.role}{group})."),
            html.Div(id=ids.ACCOUNT_ALERT),
            dbc.Card(
                dbc.CardBody(
                    [
                        html.H5("Change password"),
                        labelled("Current password", dbc.Input(id=ids.PASSWORD_CURRENT, type="password")),
                        labelled(
                            f"New password (at least {accounts.MIN_PASSWORD_LENGTH} characters)",
                            dbc.Input(id=ids.PASSWORD_NEW, type="password", autocomplete="new-password"),
                        ),
                        labelled(
                            "New password again",
                            dbc.Input(id=ids.PASSWORD_REPEAT, type="password", autocomplete="new-password"),
                        ),
                        dbc.Button("Change password", id=ids.PASSWORD_SAVE, color="primary"),
                    ]
                ),
                class_name="mb-3",
            ),
            dbc.Card(
                dbc.CardBody(
                    [
                        html.H5("API tokens"),
                        html.P(
                            "Scripts send a token as 'Authorization: Bearer …' (docs/api.md). A token is shown "
                            "once, when it is made; keep it like a password.",
                            className="small text-muted",
                        ),
                        dbc.InputGroup(
                            [
                                dbc.Input(id=ids.TOKEN_LABEL, placeholder="what it is for, e.g. nightly batch"),
                                dbc.Button("Create token", id=ids.TOKEN_CREATE, color="primary"),
                            ],
                            class_name="mb-3",
                        ),
                        html.Div(token_table(account.username), id=ids.TOKEN_LIST),
                    ]
                )
            ),
        ],
    )


def labelled(text: str, control) -> html.Div:
    return html.Div([dbc.Label(text, html_for=control.id), control], className="mb-2")


def token_table(username: str):
    tokens = [t for t in accounts.list_tokens(services().db, username) if not t.revoked]
    if not tokens:
        return html.P("No live tokens.", className="small text-muted")
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th("id"), html.Th("label"), html.Th("created"), html.Th("last used"), html.Th()])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(token.id),
                            html.Td(token.label or "–"),
                            html.Td(token.created_at[:19].replace("T", " ")),
                            html.Td((token.last_used_at or "never")[:19].replace("T", " ")),
                            html.Td(
                                dbc.Button(
                                    "Revoke",
                                    id={"type": ids.TOKEN_REVOKE, "token": token.id},
                                    size="sm",
                                    color="outline-danger",
                                )
                            ),
                        ]
                    )
                    for token in tokens
                ]
            ),
        ],
        size="sm",
        class_name="small",
    )


def signed_in_account():
    account = current_account()
    if account is None or account.id is None:
        raise PreventUpdate
    return account


@callback(
    Output(ids.ACCOUNT_ALERT, "children"),
    Output(ids.PASSWORD_CURRENT, "value"),
    Output(ids.PASSWORD_NEW, "value"),
    Output(ids.PASSWORD_REPEAT, "value"),
    Input(ids.PASSWORD_SAVE, "n_clicks"),
    State(ids.PASSWORD_CURRENT, "value"),
    State(ids.PASSWORD_NEW, "value"),
    State(ids.PASSWORD_REPEAT, "value"),
    prevent_initial_call=True,
)
def change_password(_clicks, current, new, repeat):
    account = signed_in_account()
    db = services().db
    if accounts.authenticate(db, account.username, current or "") is None:
        return error_alert("the current password is not right.", "Not changed"), "", no_update, no_update
    if new != repeat:
        return error_alert("the two new passwords differ.", "Not changed"), no_update, "", ""
    try:
        accounts.set_password(db, account.username, new or "")
    except accounts.AccountError as exc:
        return error_alert(f"{exc}.", "Not changed"), no_update, "", ""
    # Every other session of this account ends (its stamp changed); this one carries on
    flask_login.login_user(SignedIn(account, accounts.stamp_of(db, account.id) or ""))
    audit.record(
        db, actor=account.username, action="password_set", target=f"user {account.username}", address=client_address()
    )
    return dbc.Alert("Password changed. Other sessions of this account are signed out.", color="success"), "", "", ""


@callback(
    Output(ids.ACCOUNT_ALERT, "children", allow_duplicate=True),
    Output(ids.TOKEN_LIST, "children"),
    Output(ids.TOKEN_LABEL, "value"),
    Input(ids.TOKEN_CREATE, "n_clicks"),
    Input({"type": ids.TOKEN_REVOKE, "token": ALL}, "n_clicks"),
    State(ids.TOKEN_LABEL, "value"),
    prevent_initial_call=True,
)
def create_or_revoke_token(_create, revokes, label):
    account = signed_in_account()
    db = services().db
    trigger = dash.ctx.triggered_id
    if trigger == ids.TOKEN_CREATE:
        token_id, token = accounts.create_token(db, account.username, (label or "").strip())
        audit.record(
            db,
            actor=account.username,
            action="token_created",
            target=f"user {account.username}",
            detail={"token": token_id},
            address=client_address(),
        )
        shown = dbc.Alert(
            [
                html.B("New token (shown this once): "),
                dcc.Clipboard(target_id="new-token", className="d-inline-block ms-1 me-1"),
                html.Code(token, id="new-token", className="user-select-all"),
            ],
            color="success",
        )
        return shown, token_table(account.username), ""
    if not any(revokes or []):
        raise PreventUpdate  # the buttons were drawn, not clicked
    try:
        accounts.revoke_token(db, int(trigger["token"]), username=account.username)
    except accounts.AccountError as exc:
        return error_alert(f"{exc}.", "Not revoked"), token_table(account.username), no_update
    audit.record(
        db, actor=account.username, action="token_revoked", target=f"token {trigger['token']}", address=client_address()
    )
    return dbc.Alert("Token revoked.", color="secondary"), token_table(account.username), no_update
