"""Who is asking, and the rules every request passes before it reaches a page, a callback or the API.

In order, for every request (docs/api.md "Authentication"):

1. The Host header must be one of the trusted hosts (`ALLOWED_HOSTS`; DNS rebinding).
2. Single-user mode (`AUTH_REQUIRED=false`, loopback only) answers only this machine's clients.
3. With sign-in required, a request needs a session (Flask-Login, the `/login` form) or a personal
   API token (`Authorization: Bearer rtc_...`). Without one, pages redirect to `/login?next=...`
   and everything else answers 401. A presented token that is not valid is 401 in either mode.
   WebSockets are checked by their handlers (they close with 4401 before sending anything).
4. A state-changing request that is not token-authenticated must carry the CSRF token (Flask-WTF:
   Dash's renderer sends it from the `_csrf_token` cookie as `X-CSRFToken`, forms as a field),
   and API writes must come from the app's own origin (or an `ALLOWED_ORIGINS` one).

Sessions name the account and a stamp of its password: a password change or a disabled
account ends every session at its next request. Background callbacks run outside any request;
the account travels with them in Dash's callback context (`custom_data`).
"""

from __future__ import annotations

import dataclasses
import logging
from urllib.parse import quote, urlsplit

import dash
import flask_login
from flask import Flask, Response, has_request_context, jsonify, redirect, render_template, request, session
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from limits import parse
from markupsafe import Markup

from dashboard.errors import status_of
from dashboard.services import services
from settings import Settings, is_loopback
from store import audit
from store.accounts import (
    SINGLE_USER,
    Account,
    account_for_session,
    account_for_token,
    authenticate,
    list_accounts,
    stamp_of,
)

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_COOKIE = "_csrf_token"  # the name dash-renderer reads (and sends back as X-CSRFToken)
LIMITER_KEY = "rtcheck.limiter"


class SignedIn(flask_login.UserMixin):
    """The account behind a request, as Flask-Login holds it; the session id carries the stamp."""

    def __init__(self, account: Account, stamp: str = "", via_token: bool = False) -> None:
        self.account, self.stamp, self.via_token = account, stamp, via_token

    def get_id(self) -> str:
        return f"{self.account.id}:{self.stamp}"


def current_account() -> Account | None:
    """The account a request or a background callback acts for; SINGLE_USER when sign-in is off;
    None when nobody is signed in."""
    if has_request_context():
        user = flask_login.current_user
        if user is not None and user.is_authenticated:
            return user.account
        return None if services().settings.auth_required else SINGLE_USER
    carried = (dash.callback_context.custom_data or {}).get("account")
    if carried:
        return Account(**carried)
    return None if services().settings.auth_required else SINGLE_USER


def client_address() -> str | None:
    if has_request_context():
        return request.remote_addr
    return (dash.callback_context.custom_data or {}).get("address")


@dash.hooks.custom_data("account")
def _carry_account(_context) -> dict | None:
    """Put the caller's account into every callback's context, so background callbacks (run in a
    Celery worker or a forked process, with no request) act for the same person."""
    account = current_account()
    return dataclasses.asdict(account) if account else None


@dash.hooks.custom_data("address")
def _carry_address(_context) -> str | None:
    return request.remote_addr if has_request_context() else None


def limiter() -> Limiter:
    from flask import current_app

    return current_app.extensions[LIMITER_KEY]


def upload_allowed(account: Account) -> bool:
    """Counts one upload for the account; False once it is over UPLOAD_RATE_LIMIT."""
    settings = services().settings
    try:
        return limiter().limiter.hit(parse(settings.upload_rate_limit), "uploads", str(account.username))
    except Exception as exc:  # the limiter's storage is down: do not stop the work for it
        log.warning("upload rate limit not checked: %s", exc)
        return True


def register(app: Flask, settings: Settings) -> None:
    prefix = settings.url_prefix
    app.config.update(
        SESSION_COOKIE_NAME="rtcheck_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_PATH=prefix,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked below, where token-authenticated requests are exempt
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the session: a page left open keeps working
        WTF_CSRF_HEADERS=["X-CSRFToken", "X-CSRF-Token"],
    )
    csrf = CSRFProtect(app)
    login_manager = flask_login.LoginManager(app)
    login_manager.session_protection = "basic"
    app.extensions[LIMITER_KEY] = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        key_prefix=f"rtcheck-limits{prefix}",
        in_memory_fallback_enabled=True,
        default_limits=[],
    )

    @login_manager.user_loader
    def load_from_session(user_id: str):
        number, _, stamp = user_id.partition(":")
        if not number.isdigit():
            return None
        account = account_for_session(services().db, int(number), stamp)
        return SignedIn(account, stamp) if account else None

    @login_manager.request_loader
    def load_from_token(req):
        token = bearer_token(req)
        if token is None:
            return None
        account = account_for_token(services().db, token)
        return SignedIn(account, via_token=True) if account else None

    public = {
        f"{prefix}login",
        f"{prefix}api/health",
        f"{prefix}api/openapi.json",
        f"{prefix}metrics",
        f"{prefix}_favicon.ico",
        f"{prefix}favicon.ico",  # browsers ask for it on the sign-in page too
    }
    static = (f"{prefix}assets/", f"{prefix}_dash-component-suites/")

    @app.before_request
    def guard():
        path = request.path
        found = services()
        refused = check_host(found.settings)
        if refused is not None:
            return refused
        if not found.settings.auth_required and not is_loopback(request.remote_addr or ""):
            return api_error(
                "local_only", "this server runs without sign-in (single-user mode) and answers only this machine"
            )
        if path.startswith(static):
            return None
        user = flask_login.current_user
        if bearer_token(request) is not None and not (user and user.is_authenticated):
            return api_error("unauthorized", "the API token is not valid (revoked, or its account is disabled)")
        if path.startswith(f"{prefix}ws/"):
            return None  # the socket handlers close with 4401/4404 themselves
        if found.settings.auth_required and not user.is_authenticated and path not in public:
            if request.method == "GET" and wants_page(path, prefix):
                return redirect(f"{prefix}login?next={quote(safe_next(request.full_path, prefix), safe='/')}")
            return api_error("unauthorized", "sign in, or send a personal API token as 'Authorization: Bearer ...'")
        if request.method in WRITE_METHODS and not getattr(user, "via_token", False):
            if path.startswith(f"{prefix}api/") and not same_origin(found.settings):
                return api_error("csrf_failed", "this request came from another site; it was refused")
            if not path.startswith(f"{prefix}api/") or user.is_authenticated:
                csrf.protect()
        return None

    @app.after_request
    def session_headers(response: Response) -> Response:
        if request.path.startswith(static):
            return response
        # A signed-out user's back button must not show a cached page of private results
        response.headers.setdefault("Cache-Control", "no-store")
        if not request.path.startswith((f"{prefix}api/", f"{prefix}ws/")) and response.status_code < 400:
            response.set_cookie(
                CSRF_COOKIE,
                generate_csrf(),
                samesite="Lax",
                secure=settings.secure_cookies,
                httponly=False,  # read by dash-renderer, which sends it back as a header
                path=prefix,
            )
        return response

    @app.errorhandler(CSRFError)
    def csrf_refused(exc: CSRFError):
        log.warning("refused %s %s: %s", request.method, request.path, exc.description)
        if request.path == f"{prefix}login":
            return login_page("The form has expired; please sign in again.", status=400)
        return api_error("csrf_failed", f"{exc.description} Reload the page and try again.")

    @app.errorhandler(RateLimitExceeded)
    def too_many(exc: RateLimitExceeded):
        if request.path == f"{prefix}login":
            return login_page("Too many attempts: wait a minute, then try again.", status=429)
        return api_error("rate_limited", f"too many requests ({exc.description}); wait and try again")

    @app.route(f"{prefix}login", methods=["GET", "POST"])
    @limiter_for(app).limit(
        settings.login_rate_limit, methods=["POST"], deduct_when=lambda response: response.status_code == 401
    )
    def login():
        if request.method == "GET":
            if flask_login.current_user.is_authenticated:
                return redirect(safe_next(request.args.get("next"), prefix))
            return login_page()
        username = request.form.get("username", "").strip()
        account = authenticate(services().db, username, request.form.get("password", ""))
        if account is None:
            audit.record(
                services().db,
                actor=username[:64] or "anonymous",
                action="sign_in_failed",
                address=request.remote_addr,
            )
            return login_page("Wrong user name or password.", username=username, status=401)
        session.clear()  # nothing from before the sign-in carries over
        flask_login.login_user(SignedIn(account, stamp_of(services().db, account.id) or ""))
        audit.record(services().db, actor=account.username, action="sign_in", address=request.remote_addr)
        return redirect(safe_next(request.form.get("next"), prefix))

    @app.post(f"{prefix}logout")
    def logout():
        flask_login.logout_user()
        session.clear()
        response = redirect(f"{prefix}login")
        response.delete_cookie(CSRF_COOKIE, path=prefix)
        return response


def limiter_for(app: Flask) -> Limiter:
    return app.extensions[LIMITER_KEY]


def bearer_token(req) -> str | None:
    header = req.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def api_error(code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": []}})
    response.status_code = status_of(code)
    if code == "unauthorized":
        response.headers["WWW-Authenticate"] = 'Bearer realm="rtcheck"'
    return response


def wants_page(path: str, prefix: str) -> bool:
    """A browser navigating to a page (not the API, Dash's own routes or a socket)."""
    inner = path[len(prefix) :]
    return not inner.startswith(("api/", "_dash-", "_reload-hash", "ws/")) and "text/html" in request.headers.get(
        "Accept", "text/html"
    )


def safe_next(target: str | None, prefix: str) -> str:
    """Only a path of this app: `next` must not send a signed-in user to another site."""
    target = (target or "").rstrip("?")
    parts = urlsplit(target)
    if not target.startswith(prefix) or target.startswith("//") or parts.scheme or parts.netloc:
        return prefix
    if target.startswith(f"{prefix}login") or target.startswith(f"{prefix}logout"):
        return prefix
    return target


def check_host(settings: Settings) -> Response | None:
    """Refuse a Host the server is not known by (DNS rebinding points a foreign name at us)."""
    trusted = settings.trusted_hosts
    if "*" in trusted:
        return None
    name = host_name(request.host or "")
    if name in trusted or is_loopback(name):  # a loopback address typed as such is no rebinding
        return None
    log.warning("refused a request for host %r (ALLOWED_HOSTS: %s)", name, ", ".join(trusted))
    return api_error("host_not_allowed", f"this server does not answer to {name!r}; see ALLOWED_HOSTS")


def host_name(host_header: str) -> str:
    """`[::1]:8050` → `::1`, `localhost:8050` → `localhost` (lower case)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def same_origin(settings: Settings) -> bool:
    """No Origin (a script, not a browser), the app's own scheme://host:port, or an allowed one."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    origin = origin.rstrip("/")
    if origin in settings.allowed_origins:
        return True
    parts = urlsplit(origin)
    return parts.scheme == request.scheme and parts.netloc == request.host


def login_page(message: str = "", *, username: str = "", status: int = 200) -> tuple[str, int]:
    prefix = services().settings.url_prefix
    hint = ""
    if not list_accounts(services().db):
        hint = Markup(
            "No account exists yet. An operator creates the first one with "
            "<code>python -m store users add NAME --role admin</code>."
        )
    page = render_template(
        "login.html",
        prefix=prefix,
        message=message,
        tone="warning" if status == 429 else "danger",
        csrf=generate_csrf(),
        next=safe_next(request.values.get("next"), prefix),
        username=username,
        hint=hint,
    )
    return page, status
