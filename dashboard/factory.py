"""Builds the Dash app, its API and WebSocket routes, and the job machinery, from settings."""

from __future__ import annotations

import atexit
import logging
import multiprocessing
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html
from flask_wtf.csrf import generate_csrf

from dashboard import api, auth, ids, observability, security, ws
from dashboard.events import EventHub, LocalAnnouncer
from dashboard.services import EXTENSION_KEY, Services, install, services
from dashboard.upload_check import UploadChecker
from logs import configure_logging
from settings import Settings, get_settings
from store.accounts import count_admins
from store.db import Database
from store.migrate import current_revision, head_revision, upgrade
from worker.control import JobControl
from worker.progress import make_publisher

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("app")


def make_celery_app(settings: Settings):
    if settings.embedded:
        return None
    from worker.celery_app import make_celery

    return make_celery(settings)


def background_manager(settings: Settings, celery):
    if celery is not None:
        return dash.CeleryManager(celery, expire=600)
    import diskcache

    from dashboard.background import ThreadedDiskcacheManager

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return ThreadedDiskcacheManager(diskcache.Cache(str(settings.data_dir / "callback-cache")), expire=600)


def create_app(settings: Settings | None = None, *, celery=None, start_background: bool | None = None) -> dash.Dash:
    """Build the Dash app, its API and WebSocket routes, and (embedded mode) the local job runner.

    Background machinery (the embedded scheduler) starts only in a top-level process: a
    process Dash forks for a background callback has a copy of the app and must not start one.
    """
    settings = settings or get_settings()
    if start_background is None:
        start_background = multiprocessing.parent_process() is None
    configure_logging(settings)
    db = Database(settings.database_url)
    if settings.embedded:
        upgrade(db)  # one laptop, one process: migrate on start
    elif current_revision(db) != head_revision():
        log.error(
            "database schema is at %s, not %s: run `python -m store upgrade` before starting",
            current_revision(db),
            head_revision(),
        )
    elif settings.app_env == "production" and settings.auth_required and count_admins(db) == 0:
        raise RuntimeError(
            "refusing to start in production: sign-in is required and no enabled admin account exists; "
            "create one with `python -m store users add NAME --role admin` (Compose: set ADMIN_USERNAME "
            "and ADMIN_PASSWORD for the migrate step)"
        )

    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=str(REPO / "dashboard" / "pages"),
        assets_folder=str(REPO / "assets"),
        url_base_pathname=settings.url_prefix,
        background_callback_manager=background_manager(settings, celery),
        suppress_callback_exceptions=True,
        title="Ganglioside RT check",
        update_title=None,
        on_error=show_callback_error,
    )
    server = app.server
    server.secret_key = settings.secret_key
    if settings.behind_proxy:
        # Client address, scheme, host and path prefix as the reverse proxy saw them.
        from werkzeug.middleware.proxy_fix import ProxyFix

        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)
    # Dash uploads arrive base64-encoded inside a callback request: allow for the encoding.
    server.config["MAX_CONTENT_LENGTH"] = int(settings.max_upload_bytes * 1.4) + 1_000_000
    app.layout = root_layout

    hub = EventHub(db, settings.redis_url)  # started by the first WebSocket that needs it
    if settings.embedded:
        from worker.context import WorkerContext
        from worker.dispatch import LocalDispatcher
        from worker.local import LocalRunner

        publisher = LocalAnnouncer(hub)
        runner = LocalRunner(settings, WorkerContext(settings, db, publisher))
        dispatcher = LocalDispatcher(runner)
        if start_background:
            runner.start()
            atexit.register(runner.shutdown)
    else:
        from worker.dispatch import CeleryDispatcher

        publisher = make_publisher(settings.redis_url)
        dispatcher = CeleryDispatcher(celery, db, settings.redis_url)
    checker = UploadChecker(
        seconds=settings.upload_check_seconds, workers=settings.upload_check_workers, memory_mb=settings.job_memory_mb
    )
    found = Services(settings, db, dispatcher, hub, publisher, JobControl(db, publisher, dispatcher), checker, celery)
    server.extensions[EXTENSION_KEY] = found
    install(found)
    observability.register(server, settings.url_prefix)
    security.register(server, script_hashes=app.csp_hashes)
    auth.register(server, settings)
    api.register(server, settings.url_prefix)
    ws.register(server, settings.url_prefix)
    log.info("started: %s", settings.describe())
    return app


def show_callback_error(error: Exception) -> None:
    """Any callback that fails shows a readable alert (and is logged), never a blank page."""
    log.exception("callback failed", exc_info=error)
    dash.set_props(
        ids.GLOBAL_ALERT,
        {
            "children": dbc.Alert(
                [
                    html.B("Something went wrong: "),
                    f"{type(error).__name__}: {error}. The details are in the server log; "
                    "reload the page to try again.",
                ],
                color="danger",
                dismissable=True,
            )
        },
    )


def who_is_signed_in(account):
    """The account's name and a sign-out button; or, without sign-in, a note that says so."""
    settings = services().settings
    if not settings.auth_required:
        return dbc.NavItem(
            dbc.Badge("single-user mode", color="secondary", className="ms-2", title="AUTH_REQUIRED=false"),
            class_name="d-flex align-items-center",
            id=ids.SIGNED_IN,
        )
    if account is None:
        return dbc.NavItem(id=ids.SIGNED_IN)
    return dbc.NavItem(
        html.Form(
            [
                dcc.Link(
                    f"{account.username} · {account.role}",
                    href=dash.get_relative_path("/account"),
                    className="text-light small me-2",
                    title="Account: password and API tokens",
                ),
                dcc.Input(type="hidden", name="csrf_token", value=generate_csrf()),
                html.Button("Sign out", type="submit", className="btn btn-outline-light btn-sm", id=ids.SIGN_OUT),
            ],
            method="post",
            action=f"{settings.url_prefix}logout",
            className="d-flex align-items-center ms-3",
        ),
        id=ids.SIGNED_IN,
    )


def root_layout():
    """Navbar and page container. Stores written by background callbacks and sockets live here,
    so they exist whichever page the user is on when an update arrives."""
    account = auth.current_account()
    admin = account is not None and account.is_admin
    pages = [
        page
        for page in dash.page_registry.values()
        if page.get("nav", True) and (admin or not page.get("admin_only")) and (account or page.get("public"))
    ]
    return html.Div(
        [
            dbc.NavbarSimple(
                brand="Ganglioside RT check",
                brand_href=dash.get_relative_path("/"),
                children=[
                    *(
                        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
                        for page in pages
                    ),
                    who_is_signed_in(account),
                ],
                color="dark",
                dark=True,
                class_name="mb-3",
            ),
            dbc.Container([html.Div(id=ids.GLOBAL_ALERT), dash.page_container], fluid=True, class_name="pb-4"),
            dcc.Location(id=ids.REDIRECT, refresh="callback-nav"),
            dcc.Store(id=ids.JOB_EVENTS),
            dcc.Store(id=ids.ALL_JOBS),
            dcc.Store(id=ids.ANALYZE_RUNNING, data=False),
            dcc.Store(id=ids.ANALYZE_RESULT),
        ]
    )
