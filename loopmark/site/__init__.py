"""The public site: a Flask app factory wiring the render service into pages and a JSON API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_compress import Compress
from werkzeug.middleware.proxy_fix import ProxyFix

from loopmark.config import Settings
from loopmark.errors import ConfigInvalid
from loopmark.site.context import EXTENSION, SiteServices
from loopmark.site.paths import STATIC_DIR

__all__ = ["EXTENSION", "create_app"]

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


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the site. ``config`` keys named LOOPMARK_* override the environment; other keys go
    to ``app.config`` (TESTING, SECRET_KEY, RENDER_RATE_LIMIT, ...). Backends are opened
    lazily, on first use."""
    config = dict(config or {})
    env = {**os.environ, **{k: str(v) for k, v in config.items() if k.startswith("LOOPMARK_")}}
    settings = Settings.from_env(env)
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config.update(site_config(env))
    app.config.update({k: v for k, v in config.items() if not k.startswith("LOOPMARK_")})

    from loopmark.admin import init_app as init_admin
    from loopmark.site import (
        api,
        assets,
        errors,
        graphql,
        headers,
        health,
        limits,
        logs,
        media,
        pages,
    )

    # after_request hooks run in reverse order of registration: the access log (registered
    # first) runs last and sees the final status; compression derives its ETag from the one
    # the headers hook set. Logging comes first, so what opening the backends logs is JSON too.
    logs.init_app(app)
    app.extensions[EXTENSION] = SiteServices.build(settings, env)
    Compress(app)
    headers.init_app(app)
    for module in (api, pages, media, health):
        app.register_blueprint(module.blueprint)
    graphql.init_app(app)
    limits.init_app(app)
    # After the limiter: the admin limits its login form with it.
    init_admin(app, env)
    errors.init_app(app)
    assets.init_app(app)
    hops = app.config["PROXY_HOPS"]
    if hops:
        # X-Forwarded-For/-Proto/-Host from that many proxies are trusted (rate limits, HSTS,
        # absolute links); without it a client could forge its address.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    if not (settings.debug or app.testing or app.config["SITE_URL"]):
        # Shared pages are cached by the CDN: their absolute links must not come from a
        # request's Host header, or one forged request would poison them for everyone.
        raise ConfigInvalid(
            "LOOPMARK_SITE_URL (the public https:// origin) is required outside debug"
        )
    return app


def site_config(env: Mapping[str, str]) -> dict[str, Any]:
    """The site's own settings (limits, proxies), from LOOPMARK_* environment variables."""
    return {
        "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
        "MAX_FORM_MEMORY_SIZE": MAX_BODY_BYTES,
        "COMPRESS_MIMETYPES": COMPRESS_MIMETYPES,
        "COMPRESS_ALGORITHM": ["br", "gzip"],
        # flask-compress's streaming mode leaves send_file's file open (a ResourceWarning per
        # static response); whole-body compression of our small text responses is fine.
        "COMPRESS_STREAMS": False,
        # Per client IP; Flask-Limiter's syntax ("30/minute;300/hour").
        "RENDER_RATE_LIMIT": env.get("LOOPMARK_RATE_LIMIT_RENDERS") or "30/minute;300/hour",
        "CAPTION_RATE_LIMIT": env.get("LOOPMARK_RATE_LIMIT_CAPTIONS") or "120/minute;2000/hour",
        "RATELIMIT_ENABLED": env.get("LOOPMARK_RATE_LIMITS", "on").lower() not in {"0", "off"},
        # How long POST /api/renders may hold a request for a quick render, and how many
        # requests may hold at once (the rest answer 202 at once, so threads stay free).
        "RENDER_WAIT_SECONDS": 2.0,
        "RENDER_HOLD_SLOTS": _whole(env, "LOOPMARK_RENDER_HOLD_SLOTS", 8),
        # Reverse proxies (load balancer, CDN) in front of the site that set X-Forwarded-*.
        "PROXY_HOPS": _whole(env, "LOOPMARK_PROXY_HOPS", 0),
        # The public origin for absolute links (Open Graph); the request's host when unset.
        "SITE_URL": _site_url(env.get("LOOPMARK_SITE_URL") or ""),
        "JSON_LOGS": env.get("LOOPMARK_JSON_LOGS", "on").lower() not in {"0", "off"},
    }


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    if not raw.isdigit():
        raise ConfigInvalid(f"{name} must be a whole number, not {raw!r}")
    return int(raw)


def _site_url(raw: str) -> str | None:
    if not raw:
        return None
    if not raw.startswith(("https://", "http://")):
        raise ConfigInvalid(f"LOOPMARK_SITE_URL must start with https:// or http://, got {raw!r}")
    return raw.rstrip("/")
