"""Response headers: a Content-Security-Policy, no framing, no type sniffing.

Every response, pages, API, assets and downloads alike, says: never frame me
(`X-Frame-Options: DENY` for older browsers, CSP `frame-ancestors 'none'` for current ones),
this is the type I said (`nosniff`), and send no address of ours to other sites. A page on
another origin can then not overlay Cancel or Delete with a decoy (clickjacking).

The policy lets the pages run only this server's own scripts (the vendored Dash, Plotly and
Bootstrap bundles and `assets/`), plus the inline scripts Dash writes itself (its renderer's
start, the pages' title callback), allowed by their hashes (`Dash.csp_hashes`): an injected
`<script>` or `onerror=` does not run, nothing is evaluated from text, and nothing is fetched
from another site. One allowance, for the libraries as they are: inline styles, which Plotly
and the React components set on elements. The browser tests fail on any policy violation (it
is a console error). Trusted hosts, sign-in and CSRF are dashboard/auth.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Flask, Response

BASE_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def content_security_policy(script_hashes: Iterable[str]) -> str:
    directives = {
        "default-src": "'self'",
        "script-src": " ".join(["'self'", *script_hashes]),
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data: blob:",  # Plotly's PNG/SVG downloads are data: and blob: URLs
        "font-src": "'self' data:",
        "connect-src": "'self'",  # the API and the same-origin WebSockets
        "frame-ancestors": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "object-src": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def register(app: Flask, script_hashes: Callable[[], Iterable[str]] = tuple) -> None:
    """`script_hashes` is asked at every response: Dash adds an inline script of its own (the
    pages' title callback) when it sets itself up at the first request."""

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in BASE_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", content_security_policy(script_hashes()))
        return response
