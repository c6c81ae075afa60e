"""Response headers on every answer: deliberate caching for a CDN, and the security headers.

Caching, unless a view set its own Cache-Control:
- fingerprinted static files and content-addressed media: immutable for a year;
- HTML pages: briefly public, served stale while revalidating, with an ETag (304 on a match);
  a page that touched the session (admin, CSRF forms) is private and never stored;
- everything else (API answers that change state, errors, health): ``no-store``.

Security: a CSP with no inline script or style (media may come from the CDN or the storage's
signed-URL origin; visitors' clips may be posted to the storage's direct-upload origin),
``frame-ancestors 'none'``, nosniff, a referrer policy, and HSTS over HTTPS.
A view with special needs (the debug GraphiQL page) may set its own Content-Security-Policy.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

from flask import Flask, Request, Response, current_app, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin

from loopmark.web import assets, links

HTML_CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=600"
NOT_FOUND_CACHE_CONTROL = "public, max-age=60"
PRIVATE_CACHE_CONTROL = "private, no-store"
NO_STORE = "no-store"
SECURITY_HEADERS_KEY = "loopmark.security_headers"
# The request headers that can make a page's answer a 304 or a 412 (RFC 9110, section 13.1).
CONDITIONAL_HEADERS = (
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_MATCH",
    "HTTP_IF_UNMODIFIED_SINCE",
)
HSTS_SECONDS = 31536000  # one year; the site is HTTPS-only once deployed behind TLS


def init_app(app: Flask) -> None:
    app.session_interface = PrivateSessionInterface()
    app.after_request(_add_headers)


class PrivateSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, plus: a response to a request that used the session
    (an admin page, a form with a CSRF token) is private and never stored by any cache.

    Flask opens the session on every request; without a session cookie (every visitor's API
    call and share page) it is a new empty session, made here without building the signing
    serializer first (about 4 % of a cache hit's CPU went there)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and (
            "HTTP_COOKIE" not in request.environ  # no cookies at all: none to parse
            or not request.cookies.get(self.get_cookie_name(app))
        ):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        super().save_session(app, session, response)
        if session.accessed or session.modified:
            response.headers["Cache-Control"] = PRIVATE_CACHE_CONTROL


def content_security_policy() -> str:
    media = " ".join(["'self'", *links.media_origins()])
    connect = " ".join(["'self'", *links.upload_origins()])
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src {media} data: blob:",
        f"media-src {media} blob:",
        "font-src 'self'",
        f"connect-src {connect}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def security_headers() -> tuple[tuple[str, str], ...]:
    """The security headers every answer gets unless its view set one; made once per app."""
    made: tuple[tuple[str, str], ...] | None = current_app.extensions.get(SECURITY_HEADERS_KEY)
    if made is None:
        made = (
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
            ("X-Frame-Options", "DENY"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
            ("Content-Security-Policy", content_security_policy()),
        )
        current_app.extensions[SECURITY_HEADERS_KEY] = made
    return made


def _add_headers(response: Response) -> Response:
    _cache_headers(response)
    headers = response.headers
    present = {name.lower() for name in headers.keys()}  # one pass, not one per header
    for name, value in security_headers():
        if name.lower() not in present:
            headers.add(name, value)
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", f"max-age={HSTS_SECONDS}")
    return response


def _cache_headers(response: Response) -> None:
    if response.headers.get("Cache-Control") and request.endpoint != "static":
        return  # the view decided
    if "Set-Cookie" in response.headers:
        response.headers["Cache-Control"] = PRIVATE_CACHE_CONTROL
        return
    reading = request.method in ("GET", "HEAD")
    if request.endpoint == "static" and reading:
        if response.status_code in (200, 206, 304):
            filename = (request.view_args or {}).get("filename", "")
            response.headers["Cache-Control"] = assets.static_cache_control(
                filename, request.args.get("v")
            )
        else:
            response.headers["Cache-Control"] = NOT_FOUND_CACHE_CONTROL
        return
    if reading and response.mimetype == "text/html":
        if response.status_code == 200:
            response.headers["Cache-Control"] = HTML_CACHE_CONTROL
            if not response.is_streamed:
                response.add_etag()  # unless the view set one (a kept page has its own)
                response.headers.setdefault("Date", http_date_now())  # else werkzeug's, slower
                if _conditional(request.environ) or "Content-Length" not in response.headers:
                    response.make_conditional(request)  # with neither, it would change nothing
            return
        if response.status_code == 404:
            response.headers["Cache-Control"] = NOT_FOUND_CACHE_CONTROL
            return
    response.headers["Cache-Control"] = NO_STORE


def _conditional(environ: dict[str, Any]) -> bool:
    """Whether a request asks for a 304 (or a 412) by any validator."""
    return any(name in environ for name in CONDITIONAL_HEADERS)


_date_now: tuple[int, str] = (-1, "")


def http_date_now() -> str:
    """The Date header's value for now, made once a second (email.utils.formatdate is slow
    Python; a race only makes it twice)."""
    global _date_now
    second = int(time.time())
    if _date_now[0] != second:
        _date_now = (second, email.utils.formatdate(second, usegmt=True))
    return _date_now[1]
