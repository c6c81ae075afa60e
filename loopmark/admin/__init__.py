"""The brand's back-office at /admin: the blueprint, its session and CSRF settings, its services.

``init_app(app, env)`` is called by the site's factory once Flask-Limiter is attached: it checks
the secret key (required outside debug and testing), sets the session cookie's flags and the
absolute session lifetime, turns Flask-WTF's CSRF protection on for the admin only (the public
JSON API and GraphQL take no cookies and keep working without tokens), registers the blueprint
and limits the login form. Views live in ``loopmark.admin.views`` by area.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from flask import Blueprint, Flask, current_app
from flask_wtf.csrf import CSRFProtect

from loopmark.errors import ConfigInvalid
from loopmark.records.gallery import GalleryEntry, GalleryRecords, open_gallery_records
from loopmark.records.renders import RenderRecord
from loopmark.records.stats import StatsRecords, open_stats_records
from loopmark.records.users import AdminUserRecords, open_user_records
from loopmark.records.words import WordListRecords, open_word_records
from loopmark.service.words import CachedWordLists
from loopmark.site.context import EXTENSION, SiteServices

log = logging.getLogger(__name__)

blueprint = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")

ADMIN_EXTENSION = "loopmark.admin"
# Absolute: a session ends this long after its login, however active it has been.
SESSION_LIFETIME_SECONDS = 8 * 3600
MIN_SECRET_KEY_CHARS = 32
# Failed logins per client address and per user name (Flask-Limiter syntax).
DEFAULT_LOGIN_RATE_LIMIT = "5/minute;30/hour"
# __Host-: the browser keeps it only with Secure, Path=/ and no Domain, so no subdomain can plant
# a session (fixation); plain HTTP in debug cannot use the prefix.
SECURE_COOKIE_NAME = "__Host-loopmark"
DEBUG_COOKIE_NAME = "loopmark"


class Gallery(Protocol):
    """What the admin needs of the curated gallery (the site's in-memory gallery or the records)."""

    def entries(self) -> Sequence[GalleryEntry]: ...

    def add(self, record: RenderRecord) -> GalleryEntry: ...

    def remove(self, key: str) -> bool: ...

    def reorder(self, keys: list[str]) -> None: ...


@dataclass
class AdminServices:
    """Records the admin opens for itself; the rest comes from the site's services."""

    site: SiteServices
    users: AdminUserRecords
    _gallery: GalleryRecords | None = field(default=None, repr=False)
    _words: WordListRecords | None = field(default=None, repr=False)
    _stats: StatsRecords | None = field(default=None, repr=False)

    def gallery(self) -> Gallery:
        """The site's gallery when it has one (so its cache sees the change), else the records."""
        site_gallery = getattr(self.site, "gallery", None)
        if site_gallery is not None:
            return site_gallery  # type: ignore[no-any-return]
        if self._gallery is None:
            self._gallery = open_gallery_records(self.site.settings.records_url)
        return self._gallery

    def words(self) -> WordListRecords:
        """The render service's word records (shared connections), or our own."""
        cached = self.site.render.words
        if isinstance(cached, CachedWordLists):
            return cached.records
        if self._words is None:
            self._words = open_word_records(self.site.settings.records_url)
        return self._words

    def words_changed(self) -> None:
        """Make a word-list change effective for the next caption in this process."""
        cached = self.site.render.words
        if isinstance(cached, CachedWordLists):
            cached.invalidate()

    def stats(self) -> StatsRecords | None:
        """Statistics to read, None when the render service counts none. Counts the service
        holds back (a write buffer) are written first, so the page is current."""
        counter = self.site.render.stats
        if counter is None:
            return None
        flush = getattr(counter, "flush", None)
        if callable(flush):
            flush()
        if self._stats is None:
            self._stats = open_stats_records(self.site.settings.records_url)
        return self._stats

    def close(self) -> None:
        self.users.close()
        for records in (self._gallery, self._words, self._stats):
            if records is not None:
                records.close()


def admin_services() -> AdminServices:
    return current_app.extensions[ADMIN_EXTENSION]  # type: ignore[no-any-return]


def init_app(app: Flask, env: Mapping[str, str]) -> None:
    """Wire the admin into the site; call after ``limits.init_app``. ConfigInvalid when the
    secret key is missing outside debug and testing."""
    site: SiteServices = app.extensions[EXTENSION]
    settings = site.settings
    configure_session(app, env, debug=settings.debug)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # checked by the admin's guard, admin only
    app.config["WTF_CSRF_TIME_LIMIT"] = SESSION_LIFETIME_SECONDS
    CSRFProtect(app)
    app.config.setdefault(
        "ADMIN_LOGIN_RATE_LIMIT", env.get("LOOPMARK_RATE_LIMIT_LOGIN") or DEFAULT_LOGIN_RATE_LIMIT
    )
    # Importing the views registers their routes on the blueprint (once per process).
    from loopmark.admin import auth
    from loopmark.admin.views import gallery, renders, stats, templates, words  # noqa: F401

    app.register_blueprint(blueprint)
    auth.limit_login(app)
    app.extensions[ADMIN_EXTENSION] = AdminServices(
        site=site, users=open_user_records(settings.records_url)
    )


def configure_session(app: Flask, env: Mapping[str, str], *, debug: bool) -> None:
    """Secret key, cookie flags and lifetime. Values the caller set in ``app.config`` win."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(env, debug=debug, testing=app.testing)
    secure = not debug
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


def _secret_key(env: Mapping[str, str], *, debug: bool, testing: bool) -> str:
    configured = env.get("LOOPMARK_SECRET_KEY", "")
    if configured:
        if len(configured) < MIN_SECRET_KEY_CHARS:
            raise ConfigInvalid(
                f"LOOPMARK_SECRET_KEY must be at least {MIN_SECRET_KEY_CHARS} characters "
                "(python -c 'import secrets; print(secrets.token_hex(32))')"
            )
        return configured
    if debug or testing:
        log.warning(
            "LOOPMARK_SECRET_KEY is not set: using a random key for this process, so admin "
            "sessions will not survive a restart"
        )
        return secrets.token_hex(32)
    raise ConfigInvalid(
        "LOOPMARK_SECRET_KEY is required outside debug: set it to a long random value "
        "(python -c 'import secrets; print(secrets.token_hex(32))')"
    )
