"""Rate limits that a shared address does not punish (Flask-Limiter and its ``limits`` strategy).

A venue's Wi-Fi, an office or a mobile carrier puts hundreds of visitors behind one address, so
the limits are **per visitor**: a signed, cookie-less token the page asks for once
(``GET /api/visitor``) and sends back in the ``X-Loopmark-Visitor`` header. A request without a
valid token (forged, expired, or a script that never asked) counts against its address instead.
One address may use ``ADDRESS_LIMIT_FACTOR`` visitors' worth in all, so rotating tokens buys
little, and a **site-wide render admission** (``RENDER_ADMISSION``) protects the machine.

Only renders count against the render limits: a caption somebody has rendered already is answered
before any of them (``admit_render`` is called by the view on a cache miss only). Caption checks
count per visitor and per address. An address is an IP address, an IPv6 client its /64.
Everything is in memory: under `loopmark serve` the whole site is one process, so the counts are
exact.
"""

from __future__ import annotations

import ipaddress
import math
import secrets
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import cast

from flask import Flask, Response, current_app, g, request
from flask.typing import RouteCallable
from flask_babel import gettext
from flask_limiter import Limiter, RateLimitExceeded
from itsdangerous import BadSignature, TimestampSigner
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter, RateLimiter

from loopmark.errors import N_, ConfigInvalid
from loopmark.web.errors import error_response

LIMITER_EXTENSION = "loopmark.limiter"
ADMISSION_EXTENSION = "loopmark.render_admission"
VISITOR_HEADER = "X-Loopmark-Visitor"
# A token is good for a day: a visitor at a stand for the afternoon keeps one.
VISITOR_TOKEN_SECONDS = 24 * 3600
VISITOR_TOKEN_SALT = "loopmark.visitor"
VISITOR_ID_BYTES = 12
MAX_VISITOR_TOKEN_CHARS = 200
# Endpoint → the app.config key of its per-visitor limits (an address gets the factor's worth).
LIMITED_ENDPOINTS = {"api.check_caption": "CAPTION_RATE_LIMIT"}
# Endpoint → the app.config key of limits that count per address only, scaled by the factor.
ADDRESS_LIMITED_ENDPOINTS = {"api.visitor_token": "CAPTION_RATE_LIMIT"}
LIMIT_KEYS = ("RENDER_RATE_LIMIT", "CAPTION_RATE_LIMIT", "RENDER_ADMISSION")
IPV6_CLIENT_PREFIX = 64
SITE_KEY = "site"


def client_address() -> str:
    """Who a request counts against without a visitor token: its IP address, or its /64."""
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


# -- visitor tokens ----------------------------------------------------------------------------


def _signer() -> TimestampSigner:
    return TimestampSigner(str(current_app.secret_key), salt=VISITOR_TOKEN_SALT)


def issue_visitor_token() -> str:
    """A new visitor's token: a random id, its issue time, and an HMAC over both."""
    return _signer().sign(secrets.token_urlsafe(VISITOR_ID_BYTES)).decode("ascii")


def visitor_id() -> str | None:
    """The id in this request's visitor token, or None when it is missing, forged or expired."""
    if "visitor_id" not in g:
        g.visitor_id = _verified(request.headers.get(VISITOR_HEADER, ""))
    return cast("str | None", g.visitor_id)


def _verified(token: str) -> str | None:
    if not token or len(token) > MAX_VISITOR_TOKEN_CHARS:
        return None
    try:
        return _signer().unsign(token, max_age=VISITOR_TOKEN_SECONDS).decode("ascii")
    except (BadSignature, UnicodeDecodeError):  # SignatureExpired is a BadSignature
        return None


def visitor_key() -> str:
    """Who a request counts against: its visitor, or (without a valid token) its address."""
    visitor = visitor_id()
    return f"visitor:{visitor}" if visitor else f"address:{client_address()}"


# -- limits ------------------------------------------------------------------------------------


def scaled(limits_text: str, factor: int) -> str:
    """``limits_text`` with every amount multiplied ("30/minute" × 20 → "600 per 1 minute")."""
    return ";".join(
        f"{item.amount * factor} per {item.multiples} {item.GRANULARITY.name}"
        for item in parse_many(limits_text)
    )


class RenderRefused(Exception):
    """A render not admitted: ``scope`` is visitor, address or site."""

    def __init__(self, scope: str, retry_after_s: int):
        super().__init__(scope, retry_after_s)
        self.scope = scope
        self.retry_after_s = retry_after_s


class RenderAdmission:
    """Counts admitted renders per visitor, per address and site-wide, all or none at once."""

    def __init__(self, strategy: RateLimiter, per_visitor: str, factor: int, site: str):
        self.strategy = strategy
        self.scopes: list[tuple[str, list[RateLimitItem]]] = [
            ("visitor", parse_many(per_visitor)),
            ("address", parse_many(scaled(per_visitor, factor))),
            ("site", parse_many(site)),
        ]
        self.lock = threading.Lock()

    def admit(self, visitor: str, address: str) -> None:
        """Count one render, or RenderRefused (nothing counted) when a limit is reached."""
        keys = {"visitor": visitor, "address": address, "site": SITE_KEY}
        checks = [(item, scope, keys[scope]) for scope, items in self.scopes for item in items]
        with self.lock:
            for item, scope, key in checks:
                if not self.strategy.test(item, "render", scope, key):
                    stats = self.strategy.get_window_stats(item, "render", scope, key)
                    wait_s = max(1, math.ceil(stats.reset_time - time.time()))
                    raise RenderRefused(scope, wait_s)
            for item, scope, key in checks:
                self.strategy.hit(item, "render", scope, key)


def admit_render() -> None:
    """Count a render this request is about to queue (call on a cache miss only);
    RenderRefused when the visitor, its address or the site has reached its limit."""
    limiter: Limiter = current_app.extensions[LIMITER_EXTENSION]
    if not limiter.enabled:
        return
    admission: RenderAdmission = current_app.extensions[ADMISSION_EXTENSION]
    admission.admit(visitor_key(), client_address())


def init_app(app: Flask) -> None:
    """Attach the limiter, the render admission and the endpoints' limits; call after the
    blueprints are registered. Limits are read from ``app.config`` when the app is built."""
    for config_key in LIMIT_KEYS:
        try:
            parse_many(app.config[config_key])
        except ValueError as exc:
            raise ConfigInvalid(
                f"{config_key} must look like '30/minute;300/hour', got {app.config[config_key]!r}"
            ) from exc
    factor = int(app.config["ADDRESS_LIMIT_FACTOR"])
    limiter = Limiter(
        visitor_key,
        app=app,
        storage_uri="memory://",
        strategy="moving-window",
        headers_enabled=False,  # Retry-After is set below, only on a 429
    )
    app.extensions[LIMITER_EXTENSION] = limiter
    app.extensions[ADMISSION_EXTENSION] = RenderAdmission(
        MovingWindowRateLimiter(MemoryStorage()),
        app.config["RENDER_RATE_LIMIT"],
        factor,
        app.config["RENDER_ADMISSION"],
    )
    for endpoint, config_key in LIMITED_ENDPOINTS.items():
        _limit(app, endpoint, limiter.limit(app.config[config_key], key_func=visitor_key))
    for endpoint, config_key in {**LIMITED_ENDPOINTS, **ADDRESS_LIMITED_ENDPOINTS}.items():
        ceiling = scaled(app.config[config_key], factor)
        by_address = limiter.limit(ceiling, key_func=client_address, scope=f"{endpoint}:address")
        _limit(app, endpoint, by_address)
    _only_where_limited(app, limiter, {*LIMITED_ENDPOINTS, *ADDRESS_LIMITED_ENDPOINTS})
    app.register_error_handler(RateLimitExceeded, _rate_limited)
    app.register_error_handler(RenderRefused, _render_refused)


def _only_where_limited(app: Flask, limiter: Limiter, endpoints: set[str]) -> None:
    """Run Flask-Limiter's per-request hooks only for ``endpoints``: every other route (cache
    hits, pages, media) has no limit to resolve, and its hooks cost about a tenth of a cache
    hit's CPU. Renders are counted by ``admit_render``, outside Flask-Limiter."""

    def limited() -> bool:
        return request.endpoint in endpoints

    def guard(hook: Callable[..., object]) -> Callable[..., object]:
        if isinstance(hook, partial):  # Flask-Limiter's after_request: partial(fn, limiter)
            if hook.args != (limiter,):
                return hook

            def after(response: Response) -> object:
                return hook(response) if limited() else response

            return after
        if getattr(hook, "__self__", None) is not limiter:
            return hook

        def other(*args: object) -> object:
            return hook(*args) if limited() else None

        return other

    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        for blueprint, funcs in hooks.items():
            hooks[blueprint] = [guard(hook) for hook in funcs]  # type: ignore[misc]


def _limit(app: Flask, endpoint: str, decorator: Callable[[RouteCallable], object]) -> None:
    view = app.view_functions.get(endpoint)
    if view is not None:
        # Flask-Limiter types its decorator for async views too; the view stays plain.
        app.view_functions[endpoint] = cast(RouteCallable, decorator(view))


def _rate_limited(exc: RateLimitExceeded) -> Response:
    limiter: Limiter = current_app.extensions[LIMITER_EXTENSION]
    current = limiter.current_limit
    wait_s = current.reset_at - time.time() if current is not None else 60.0
    retry_after_s = max(1, math.ceil(wait_s))
    return error_response(
        429,
        "rate_limited",
        gettext(
            "That was a lot in a short time; please try again in %(seconds)d s.",
            seconds=retry_after_s,
        ),
        retry_after_s=retry_after_s,
    )


# The waiting copy blames nobody: a venue's visitors share an address.
REFUSAL_COPY = {
    "visitor": (
        429,
        "rate_limited",
        N_("You have made a lot of GIFs in a short time; please try again in %(seconds)d s."),
    ),
    "address": (
        429,
        "rate_limited",
        N_("Lots of GIFs are being made nearby right now; please try again in %(seconds)d s."),
    ),
    "site": (
        503,
        "busy",
        N_(
            "So many GIFs are being made right now that yours has to wait; "
            "please try again in %(seconds)d s."
        ),
    ),
}


def _render_refused(exc: RenderRefused) -> Response:
    status, code, reason = REFUSAL_COPY[exc.scope]
    message = gettext(reason, seconds=exc.retry_after_s)
    return error_response(status, code, message, retry_after_s=exc.retry_after_s)
