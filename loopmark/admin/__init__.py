"""The brand's back-office at /admin: the blueprint, its session and CSRF settings.

``init_app(app, settings)`` is called by the app factory once Flask-Limiter is attached: it checks
the secret key (required outside debug and testing), sets the session cookie's flags and the
absolute session lifetime, turns Flask-WTF's CSRF protection on for the admin only (the public
JSON API and GraphQL take no cookies and keep working without tokens), registers the blueprint
and limits the login form. Views live in ``loopmark.admin.views`` by area.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect

from loopmark.config import Settings
from loopmark.errors import ConfigInvalid

log = logging.getLogger(__name__)

blueprint = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")

# Absolute: a session ends this long after its login, however active it has been.
SESSION_LIFETIME_SECONDS = 8 * 3600
# __Host-: the browser keeps it only with Secure, Path=/ and no Domain, so no subdomain can plant
# a session (fixation); plain HTTP in debug cannot use the prefix.
SECURE_COOKIE_NAME = "__Host-loopmark"
DEBUG_COOKIE_NAME = "loopmark"


def init_app(app: Flask, settings: Settings) -> None:
    """Wire the admin into the app. ConfigInvalid when the secret key is missing outside debug
    and testing. Failed logins are limited through the records (admin/auth.py), so every
    process and ``loopmark admin unlock`` see the same counts."""
    configure_session(app, settings)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # checked by the admin's guard, admin only
    app.config["WTF_CSRF_TIME_LIMIT"] = SESSION_LIFETIME_SECONDS
    CSRFProtect(app)
    # Importing the views registers their routes on the blueprint (once per process).
    from loopmark.admin import auth  # noqa: F401
    from loopmark.admin.views import gallery, renders, reports, stats, templates, words  # noqa: F401

    app.register_blueprint(blueprint)


def configure_session(app: Flask, settings: Settings) -> None:
    """Secret key, cookie flags and lifetime. Values the caller set in ``app.config`` win."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(settings, testing=app.testing)
    secure = not settings.debug
    defaults: dict[str, Any] = {
        "SESSION_COOKIE_SECURE": secure,
        "SESSION_COOKIE_HTTPONLY": True,
        # Lax, not Strict: a link to /admin from mail or chat is a cross-site navigation, and
        # under Strict it would arrive without the cookie, open a fresh session for the login
        # form's CSRF token and so sign the admin out. Cross-site POSTs carry no cookie under
        # Lax, and every admin POST also needs a CSRF token.
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": SECURE_COOKIE_NAME if secure else DEBUG_COOKIE_NAME,
        "PERMANENT_SESSION_LIFETIME": timedelta(seconds=SESSION_LIFETIME_SECONDS),
    }
    for key, value in defaults.items():
        if app.config.get(key) == Flask.default_config.get(key):
            app.config[key] = value


def _secret_key(settings: Settings, *, testing: bool) -> str:
    if settings.secret_key:
        return settings.secret_key
    if settings.debug or testing:
        log.warning(
            "LOOPMARK_SECRET_KEY is not set: using a random key for this process, so admin "
            "sessions will not survive a restart"
        )
        return secrets.token_hex(32)
    raise ConfigInvalid(
        "LOOPMARK_SECRET_KEY is required outside debug: set it to a long random value "
        "(python -c 'import secrets; print(secrets.token_hex(32))')"
    )
