"""The web app's entry point: ``create_app`` builds the services from Settings (the composition
root), then the shared web shell, the public site and the admin as sibling blueprints on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask

from loopmark import admin, site
from loopmark.composition import build_services
from loopmark.config import Settings
from loopmark.errors import ConfigInvalid
from loopmark.package_data import STATIC_DIR
from loopmark.web import assets, context, errors, headers, i18n, limits, logs, origin, proxies

# Every request body the public site takes is a small form or a JSON object; views that take
# uploads raise ``request.max_content_length`` for themselves.
MAX_BODY_BYTES = 16 * 1024
# Types worth compressing; GIF, MP4, JPEG and fonts are compressed already.
COMPRESS_MIMETYPES = [
    "text/html",
    "text/css",
    "text/plain",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/graphql-response+json",
    "image/svg+xml",
]
# Views and hooks whose coroutine check is kept (far more than the app has: a bound, not a size).
SYNC_CHECKS_KEPT = 1024


class LoopmarkFlask(Flask):
    """Flask, checking once whether each view and hook is a coroutine function: Flask asks
    ``inspect.iscoroutinefunction`` of every hook and the view on each request (a dozen calls,
    a twentieth of a cache hit's app time), and the answer never changes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        found = self._sync.get(func)
        if found is None:
            found = super().ensure_sync(func)
            if len(self._sync) < SYNC_CHECKS_KEPT:
                self._sync[func] = found
        return found


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app. ``config`` keys named LOOPMARK_* override the environment; other keys
    go to ``app.config`` (TESTING, SECRET_KEY, RENDER_RATE_LIMIT, ...). Backends are opened
    lazily, on first use."""
    config = dict(config or {})
    settings = Settings.from_env(
        overrides={k: str(v) for k, v in config.items() if k.startswith("LOOPMARK_")}
    )
    app = LoopmarkFlask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config.update(web_config(settings))
    app.config.update({k: v for k, v in config.items() if not k.startswith("LOOPMARK_")})

    # after_request hooks run in reverse order of registration: the access log (registered
    # first) runs last and sees the final status; compression derives its ETag from the one
    # the headers hook set. Logging comes first, so what opening the backends logs is JSON too.
    logs.init_app(app)
    # Before anything else runs for a request: behind a CDN, only what it forwards is served.
    origin.init_app(app, settings.origin_verify)
    context.init_app(app, build_services(settings))
    assets.Compression(app)
    headers.init_app(app)
    # After the headers hook, so it runs before it: the language cookie makes an answer private.
    i18n.init_app(app)
    site.init_app(app)
    limits.init_app(app)
    admin.init_app(app, settings)
    errors.init_app(app)
    assets.init_app(app)
    # Last, so it sees each request first: X-Forwarded-* believed only from trusted proxies.
    proxies.init_app(app, settings.proxy_hops, settings.trusted_proxies)
    if not (settings.debug or app.testing or app.config["SITE_URL"]):
        # Shared pages are cached by the CDN: their absolute links must not come from a
        # request's Host header, or one forged request would poison them for everyone.
        raise ConfigInvalid(
            "LOOPMARK_SITE_URL (the public https:// origin) is required outside debug"
        )
    return app


def web_config(settings: Settings) -> dict[str, Any]:
    """The web app's ``app.config``: limits, proxies and links, from Settings."""
    return {
        "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
        "MAX_FORM_MEMORY_SIZE": MAX_BODY_BYTES,
        "COMPRESS_MIMETYPES": COMPRESS_MIMETYPES,
        "COMPRESS_ALGORITHM": list(assets.ENCODINGS),
        # flask-compress's streaming mode leaves send_file's file open (a ResourceWarning per
        # static response); whole-body compression of our small text responses is fine.
        "COMPRESS_STREAMS": False,
        # A body under a kilobyte (an API answer, ~630 bytes for a render) fits one packet
        # either way: compressing it costs the server more than it saves anyone.
        "COMPRESS_MIN_SIZE": assets.COMPRESS_MIN_BYTES,
        # Per visitor (limits.visitor_key); Flask-Limiter's syntax ("30/minute;300/hour").
        "RENDER_RATE_LIMIT": settings.render_rate_limit,
        "CAPTION_RATE_LIMIT": settings.caption_rate_limit,
        # Per visitor above; an address may use this many visitors' worth; renders site-wide.
        "ADDRESS_LIMIT_FACTOR": settings.address_limit_factor,
        "RENDER_ADMISSION": settings.render_admission,
        "ADMIN_LOGIN_RATE_LIMIT": settings.login_rate_limit,
        "RATELIMIT_ENABLED": settings.rate_limits,
        # How long POST /api/renders may hold a request for a quick render, and how many
        # requests may hold at once (the rest answer 202 at once, so threads stay free).
        "RENDER_WAIT_SECONDS": 2.0,
        "RENDER_HOLD_SLOTS": settings.render_hold_slots,
        # Reverse proxies (load balancer, CDN) in front of the site that set X-Forwarded-*.
        "PROXY_HOPS": settings.proxy_hops,
        # The public origin for absolute links (Open Graph); the request's host when unset.
        "SITE_URL": settings.site_url,
        "TWITTER_SITE": settings.twitter_site,  # twitter:site on every page's card
        "JSON_LOGS": settings.json_logs,
    }
