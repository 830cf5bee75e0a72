"""Response headers that keep the pages out of other sites' frames and stop type sniffing.

Every response, pages, API, assets and downloads alike, says: never frame me
(`X-Frame-Options: DENY` for older browsers, CSP `frame-ancestors 'none'` for current ones),
this is the type I said (`nosniff`), and send no address of ours to other sites. A page on
another origin can then not overlay Cancel or Delete with a decoy (clickjacking). Trusted
hosts, sign-in and CSRF are dashboard/auth.py's.
"""

from __future__ import annotations

from flask import Flask, Response

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
