"""Response headers that keep the pages out of other sites' frames and stop type sniffing.

Every response, pages, API, assets and downloads alike, says: never frame me
(`X-Frame-Options: DENY` for older browsers, CSP `frame-ancestors 'none'` for current ones),
this is the type I said (`nosniff`), and send no address of ours to other sites. A page on
another origin can then not overlay Cancel or Delete with a decoy (clickjacking). The laptop
server can also be told to answer only to loopback host names (DNS rebinding).
"""

from __future__ import annotations

import ipaddress

from flask import Flask, Response, request

from dashboard.api import error

HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def register(app: Flask) -> None:
    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def is_loopback(host: str) -> bool:
    """True for a name or address only this machine reaches (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """`[::1]:8050` → `::1`, `localhost:8050` → `localhost` (lower case)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def require_loopback_host(app: Flask) -> None:
    """For the laptop server (`python app.py` on a loopback address): answer only requests whose
    Host is a loopback name. A page on another site can point a name it controls at 127.0.0.1
    (DNS rebinding) and would otherwise read and drive the app as the same origin."""

    @app.before_request
    def check_host():
        name = host_name(request.host or "")
        if not is_loopback(name):
            return error("host_not_allowed", f"this server answers only to localhost, not to {name!r}")
        return None
