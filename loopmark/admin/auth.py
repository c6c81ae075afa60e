"""Who may use the admin: login, logout, the guard in front of every /admin route, safe ``next``.

The guard runs before every admin view: without a live session a GET is sent to the login page
(with ``next``) and anything else is refused (403) before its body is read; with one, the view's
own body limit is applied and then the CSRF token is checked (400 without it). A session is held
server-side (service.admin_access: the cookie carries a random id the records must know) and is
absolute: it ends SESSION_LIFETIME_SECONDS after its login whatever the activity, at logout (a
copy of the cookie replayed afterwards is refused), when the user is deleted, or when their
password changes.

Failed logins are limited per (name, address) pair and per address, counted in the records
(LOOPMARK_RATE_LIMIT_LOGIN, LOOPMARK_RATE_LIMIT_LOGIN_ADDRESS), so a stranger cannot lock the
admin out by failing with their name, and ``loopmark admin unlock NAME`` clears them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

from loopmark.admin import SESSION_LIFETIME_SECONDS, blueprint
from loopmark.admin.forms import ActionForm, LoginForm
from loopmark.service.passwords import fingerprint
from loopmark.web.context import services
from loopmark.web.errors import error_response
from loopmark.web.limits import client_address

log = logging.getLogger(__name__)

SESSION_USER = "admin_user"
SESSION_LOGIN_AT = "admin_login_at"
SESSION_PASSWORD = "admin_password"
SESSION_ID = "admin_session"
# A clock stepping back a little (NTP) must not end sessions; a login "from the future" beyond
# this is refused.
CLOCK_SKEW_SECONDS = 60
PUBLIC_ENDPOINTS = frozenset({"admin.login"})
MAX_NEXT_CHARS = 2000
HOME_ENDPOINT = "admin.renders"
BODY_LIMIT_ATTRIBUTE = "admin_max_body_bytes"
# Werkzeug's multipart parser holds up to this much unparsed data at once (it reads 64 KB chunks),
# so the site's 16 KB form-memory cap refuses any upload; its own default is restored for them.
UPLOAD_FORM_MEMORY_BYTES = 500_000

F = TypeVar("F", bound=Callable[..., object])


def allows_body(max_bytes: int) -> Callable[[F], F]:
    """Let one view take a bigger body than the site's 16 KB (an upload); applied by the guard
    only once the session is known, so strangers can never make us read a big body."""

    def mark(view: F) -> F:
        setattr(view, BODY_LIMIT_ATTRIBUTE, max_bytes)
        return view

    return mark


def current_user() -> str | None:
    """The signed-in admin's name, or None (and the admin part of the session dropped)."""
    name = session.get(SESSION_USER)
    login_at = session.get(SESSION_LOGIN_AT)
    if name is None:
        return None
    if not isinstance(name, str) or not isinstance(login_at, int | float):
        _forget()
        return None
    age = time.time() - login_at
    if not -CLOCK_SKEW_SECONDS <= age < SESSION_LIFETIME_SECONDS:
        _forget()
        return None
    if services().admin_sessions.user(session.get(SESSION_ID)) != name:
        _forget()  # logged out (perhaps in another tab), or ended by a new password
        return None
    user = services().users.get(name)
    if user is None or fingerprint(user.password_hash) != session.get(SESSION_PASSWORD):
        _forget()
        return None
    return name


def _forget() -> None:
    for key in (SESSION_USER, SESSION_LOGIN_AT, SESSION_PASSWORD, SESSION_ID):
        session.pop(key, None)


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path inside /admin on this site, else None (no open redirect)."""
    if not target or len(target) > MAX_NEXT_CHARS or not target.isprintable():
        return None
    if "\\" in target:
        return None  # browsers read "/\evil.example" as "//evil.example"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    if parts.path != "/admin" and not parts.path.startswith("/admin/"):
        return None
    return target


def _here() -> str:
    return request.full_path.rstrip("?")


@blueprint.before_request
def guard() -> Response | None:
    csrf: CSRFProtect = current_app.extensions["csrf"]
    if request.endpoint in PUBLIC_ENDPOINTS:
        csrf.protect()
        return None
    user = current_user()
    if user is None:
        if request.method in ("GET", "HEAD"):
            return redirect(url_for("admin.login", next=_here()))
        abort(403)
    g.admin_user = user
    view = current_app.view_functions.get(request.endpoint or "")
    limit = getattr(view, BODY_LIMIT_ATTRIBUTE, None)
    if limit is not None:
        request.max_content_length = limit
        request.max_form_memory_size = UPLOAD_FORM_MEMORY_BYTES
    csrf.protect()
    return None


@blueprint.after_request
def never_store(response: Response) -> Response:
    # Admin pages show private data and carry CSRF tokens: no cache may keep them.
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    target = safe_next(request.args.get("next"))
    if request.method == "GET" and current_user() is not None:
        return redirect(target or url_for(HOME_ENDPOINT))
    form = LoginForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("admin/login.html", form=form, next=target), status
    name = (form.name.data or "").strip().lower()
    password = form.password.data or ""
    address = client_address()
    limits = services().login_limits
    wait_s = limits.retry_after(name, address) if current_app.config["RATELIMIT_ENABLED"] else None
    if wait_s is not None:
        log.warning("admin login for %r from %s held back %d s", name[:40], address, wait_s)
        return error_response(
            429,
            "login_limited",
            gettext(
                "Too many failed logins with this name from here; try again in %(seconds)d s.",
                seconds=wait_s,
            ),
            retry_after_s=wait_s,
        )
    user = services().users.authenticate(name, password)
    if user is None:
        log.warning("admin login failed for %r from %s", name[:40], address)
        limits.failed(name, address)
        form.password.data = ""
        return render_template(
            "admin/login.html", form=form, next=target, error=gettext("Wrong name or password.")
        ), 401
    # A fresh session: nothing a visitor (or an attacker) put in the old one survives the login.
    session_id = services().admin_sessions.open(name, lifetime_s=SESSION_LIFETIME_SECONDS)
    session.clear()
    session.permanent = True
    session[SESSION_USER] = name
    session[SESSION_LOGIN_AT] = time.time()
    session[SESSION_PASSWORD] = fingerprint(user.password_hash)
    session[SESSION_ID] = session_id
    log.info("admin %s logged in from %s", name, address)
    return redirect(target or url_for(HOME_ENDPOINT), code=303)


@blueprint.post("/logout")
def logout() -> Response:
    ActionForm()  # the guard has checked its CSRF token
    services().admin_sessions.end(session.get(SESSION_ID))
    session.clear()
    flash(gettext("You are signed out."), "info")
    return redirect(url_for("admin.login"), code=303)
