"""Per-client rate limits on the expensive API calls (renders, caption checks), by Flask-Limiter.

One limiter per app, in memory: with waitress the whole site is one process, so the counts are
exact. A client is its IP address, an IPv6 client its /64 (one household or phone gets a whole
/64, so counting single addresses would not limit anyone). A breach answers 429 in JSON with
Retry-After.
"""

from __future__ import annotations

import ipaddress
import math
import time
from typing import cast

from flask import Flask, Response, current_app, request
from flask.typing import RouteCallable
from flask_limiter import Limiter, RateLimitExceeded
from limits import parse_many

from loopmark.errors import ConfigInvalid
from loopmark.web.errors import error_response

LIMITER_EXTENSION = "loopmark.limiter"
# Endpoint → the app.config key holding its limits.
LIMITED_ENDPOINTS = {
    "api.create_render": "RENDER_RATE_LIMIT",
    "api.check_caption": "CAPTION_RATE_LIMIT",
}
IPV6_CLIENT_PREFIX = 64


def client_address() -> str:
    """Who a request counts against: its IP address, or its /64 for IPv6."""
    raw = request.remote_addr or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)


def init_app(app: Flask) -> None:
    """Attach the limiter and limit LIMITED_ENDPOINTS; call after the blueprints are registered.
    Limits are read from ``app.config`` when the app is built (RENDER_RATE_LIMIT, ...)."""
    for config_key in LIMITED_ENDPOINTS.values():
        try:
            parse_many(app.config[config_key])
        except ValueError as exc:
            raise ConfigInvalid(
                f"{config_key} must look like '30/minute;300/hour', got {app.config[config_key]!r}"
            ) from exc
    limiter = Limiter(
        client_address,
        app=app,
        storage_uri="memory://",
        strategy="moving-window",
        headers_enabled=False,  # Retry-After is set below, only on a 429
    )
    app.extensions[LIMITER_EXTENSION] = limiter
    for endpoint, config_key in LIMITED_ENDPOINTS.items():
        view = app.view_functions.get(endpoint)
        if view is not None:
            # Flask-Limiter types its decorator for async views too; the view stays plain.
            limited = limiter.limit(app.config[config_key])(view)
            app.view_functions[endpoint] = cast(RouteCallable, limited)
    app.register_error_handler(RateLimitExceeded, _rate_limited)


def _rate_limited(exc: RateLimitExceeded) -> Response:
    limiter: Limiter = current_app.extensions[LIMITER_EXTENSION]
    current = limiter.current_limit
    wait_s = current.reset_at - time.time() if current is not None else 60.0
    retry_after_s = max(1, math.ceil(wait_s))
    return error_response(
        429,
        "rate_limited",
        f"Too many requests from your address; please try again in {retry_after_s} s.",
        retry_after_s=retry_after_s,
    )
