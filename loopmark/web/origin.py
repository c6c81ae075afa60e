"""The origin guard: behind a CDN that adds a secret header to every request it forwards, a
request that arrives without it (someone calling the origin directly, around the cache and the
CDN's own X-Forwarded-For) is refused. Off unless LOOPMARK_ORIGIN_VERIFY is set."""

from __future__ import annotations

import hmac

from flask import Flask, request
from werkzeug.wrappers import Response

from loopmark.web.errors import error_response

HEADER = "X-Loopmark-Origin-Verify"


def init_app(app: Flask, secret: str | None) -> None:
    if not secret:
        return
    expected = secret.encode()

    @app.before_request
    def verify_origin() -> Response | None:
        given = request.headers.get(HEADER, "").encode()
        if hmac.compare_digest(given, expected):
            return None
        return error_response(403, "origin_only", "Please use the site's own address.")
