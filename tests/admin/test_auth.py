"""Admin access: every route closed without a session, CSRF on every POST, login and logout,
the rate limit, safe ``next``, absolute sessions, cookie flags and the secret key rules."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from loopmark.admin import SESSION_LIFETIME_SECONDS
from loopmark.admin.auth import SESSION_LOGIN_AT, safe_next
from loopmark.app import create_app
from loopmark.errors import ConfigInvalid
from loopmark.service.passwords import hash_password
from tests.admin.conftest import (
    ADMIN_NAME,
    ADMIN_PASSWORD,
    MakeAdminApp,
    admin,
    csrf_from,
    login,
    page_token,
)

SAMPLE_ARGS = {"key": "a" * 24, "template_id": "small"}


def admin_rules(app: Flask) -> list[tuple[str, set[str], str]]:
    """(url, methods, endpoint) of every /admin rule but the login, with sample arguments."""
    rules = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or rule.endpoint == "admin.login":
            continue
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<{name}>", SAMPLE_ARGS[name])
        rules.append((url, set(rule.methods or ()) - {"HEAD", "OPTIONS"}, rule.endpoint))
    return rules


def test_the_admin_has_routes_for_every_area(app: Flask) -> None:
    endpoints = {endpoint for _, _, endpoint in admin_rules(app)}
    for expected in (
        "admin.renders",
        "admin.take_down",
        "admin.gallery_move",
        "admin.words_import",
        "admin.template_new",
        "admin.template_edit",
        "admin.stats",
        "admin.logout",
    ):
        assert expected in endpoints


def test_every_admin_route_is_closed_without_a_session(app: Flask, client: FlaskClient) -> None:
    rules = admin_rules(app)
    assert len(rules) >= 15
    for url, methods, endpoint in rules:
        if "GET" in methods:
            response = client.get(url)
            assert response.status_code == 302, endpoint
            assert response.location.startswith("/admin/login?next="), endpoint
        if "POST" in methods:
            response = client.post(url, data={"key": "a" * 24, "word": "x", "kind": "banned"})
            assert response.status_code == 403, endpoint


def test_every_admin_post_needs_the_csrf_token(app: Flask, admin_client: FlaskClient) -> None:
    posts = [(url, endpoint) for url, methods, endpoint in admin_rules(app) if "POST" in methods]
    assert len(posts) >= 10
    for url, endpoint in posts:
        response = admin_client.post(url, data={"key": "a" * 24, "csrf_token": "forged"})
        assert response.status_code == 400, endpoint
        response = admin_client.post(url, data={"key": "a" * 24})
        assert response.status_code == 400, endpoint
    # Still signed in: a refused POST changes nothing.
    assert admin_client.get("/admin/").status_code == 200


def test_login_without_csrf_token_is_refused(client: FlaskClient) -> None:
    response = client.post("/admin/login", data={"name": ADMIN_NAME, "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_login_opens_the_admin_and_rotates_the_session(client: FlaskClient) -> None:
    before = csrf_from(client.get("/admin/login"))
    response = login(client)
    assert response.status_code == 303
    assert response.location == "/admin/"
    page = client.get("/admin/")
    assert page.status_code == 200
    assert ADMIN_NAME in page.get_data(as_text=True)
    # The pre-login session is gone, its CSRF token with it.
    response = client.post("/admin/logout", data={"csrf_token": before})
    assert response.status_code == 400


def test_wrong_password_and_unknown_user_look_the_same(client: FlaskClient) -> None:
    wrong = login(client, password="not the password")
    unknown = login(client, name="nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong name or password." in wrong.get_data(as_text=True)
    assert "Wrong name or password." in unknown.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_next_goes_only_to_local_admin_paths(client: FlaskClient) -> None:
    redirect = client.get("/admin/words?x=1")
    assert redirect.location == "/admin/login?next=/admin/words?x%3D1"
    response = login(client, next_path="/admin/words%3Fx%3D1")
    assert response.location == "/admin/words?x=1"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/admin/",
        "//evil.example/admin/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/",
        "/admin-evil",
        "/admin/\n",
        "",
        None,
    ],
)
def test_safe_next_refuses_anything_but_admin_paths(target: str | None) -> None:
    assert safe_next(target) is None


def test_safe_next_keeps_admin_paths() -> None:
    assert safe_next("/admin/gallery") == "/admin/gallery"
    assert safe_next("/admin") == "/admin"


def test_login_ignores_an_external_next(client: FlaskClient) -> None:
    response = login(client, next_path="https://evil.example/")
    assert response.status_code == 303
    assert response.location == "/admin/"


def test_logout_is_a_post_and_ends_the_session(admin_client: FlaskClient) -> None:
    assert admin_client.get("/admin/logout").status_code == 405
    token = page_token(admin_client)
    response = admin_client.post("/admin/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.location == "/admin/login"
    assert admin_client.get("/admin/").status_code == 302


def test_a_session_ends_after_its_absolute_lifetime(admin_client: FlaskClient) -> None:
    with admin_client.session_transaction() as session:
        session[SESSION_LOGIN_AT] = time.time() - SESSION_LIFETIME_SECONDS + 30
    assert admin_client.get("/admin/").status_code == 200  # active, still inside the 8 h
    with admin_client.session_transaction() as session:
        session[SESSION_LOGIN_AT] = time.time() - SESSION_LIFETIME_SECONDS - 1
    response = admin_client.get("/admin/")
    assert response.status_code == 302
    assert response.location.startswith("/admin/login")


def test_a_new_password_ends_existing_sessions(app: Flask, admin_client: FlaskClient) -> None:
    admin(app).users.records.put(ADMIN_NAME, hash_password("another long password"))
    assert admin_client.get("/admin/").status_code == 302


def test_a_deleted_user_is_signed_out(app: Flask, admin_client: FlaskClient) -> None:
    admin(app).users.records.delete(ADMIN_NAME)
    assert admin_client.get("/admin/").status_code == 302


def test_failed_logins_are_rate_limited_per_name_and_address(client: FlaskClient) -> None:
    for _ in range(5):
        assert login(client, password="wrong password").status_code == 401
    # Even the right password waits now, with a reason and a Retry-After.
    held = login(client)
    assert held.status_code == 429
    assert 0 < int(held.headers["Retry-After"]) <= 3600
    assert "failed logins" in held.get_data(as_text=True)


def test_strangers_failing_with_the_admins_name_do_not_lock_the_admin_out(app: Flask) -> None:
    for number in range(5):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{number}"
        for _ in range(5):
            login(client, password="wrong password")
        assert login(client, password="wrong password").status_code == 429
    admin_client = app.test_client()
    admin_client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert login(admin_client).status_code == 303
    assert admin_client.get("/admin/").status_code == 200


def test_failed_logins_are_rate_limited_per_address_for_any_name(app: Flask) -> None:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    for number in range(20):  # LOOPMARK_RATE_LIMIT_LOGIN_ADDRESS: 20/minute
        assert login(client, name=f"guess{number}", password="x" * 10).status_code == 401
    assert login(client).status_code == 429
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert login(elsewhere).status_code == 303


def test_unlock_clears_a_name_and_its_addresses(app: Flask, client: FlaskClient) -> None:
    for _ in range(5):
        login(client, password="wrong password")
    assert login(client).status_code == 429
    assert admin(app).login_limits.unlock(ADMIN_NAME) == 5
    assert login(client).status_code == 303


def test_logout_revokes_the_session_server_side(app: Flask, admin_client: FlaskClient) -> None:
    cookie = admin_client.get_cookie("__Host-loopmark")
    assert cookie is not None
    stolen = app.test_client()
    stolen.set_cookie(cookie.key, cookie.value, domain="localhost", path="/")
    assert stolen.get("/admin/").status_code == 200  # a copy works while the session lives
    token = page_token(admin_client)
    assert admin_client.post("/admin/logout", data={"csrf_token": token}).status_code == 303
    replayed = app.test_client()
    replayed.set_cookie(cookie.key, cookie.value, domain="localhost", path="/")
    response = replayed.get("/admin/")
    assert response.status_code == 302
    assert response.location.startswith("/admin/login")
    assert stolen.get("/admin/").status_code == 302


def test_good_logins_do_not_count(app: Flask) -> None:
    for _ in range(7):
        assert login(app.test_client()).status_code == 303


def test_session_cookie_flags(client: FlaskClient) -> None:
    response = login(client)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-loopmark=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Domain" not in cookie
    assert "Expires" in cookie  # a permanent session, ended server-side after 8 h in any case


def test_debug_cookies_are_not_secure(make_admin_app: MakeAdminApp) -> None:
    app = make_admin_app(LOOPMARK_DEBUG="1")
    response = login(app.test_client())
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("loopmark=")
    assert "Secure" not in cookie
    assert "HttpOnly" in cookie


def test_admin_pages_are_never_stored(client: FlaskClient, admin_client: FlaskClient) -> None:
    assert client.get("/admin/login").headers["Cache-Control"] == "private, no-store"
    for path in ("/admin/", "/admin/gallery", "/admin/templates/small/poster.jpg"):
        response = admin_client.get(path)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "private, no-store"


def test_public_api_needs_no_csrf_token(client: FlaskClient) -> None:
    response = client.post("/api/captions/check", json={"template": "small", "caption": "Hi"})
    assert response.status_code == 200


def _bare_config(app: Flask, **extra: Any) -> dict[str, Any]:
    settings = app.extensions["loopmark"].settings
    return {
        "LOOPMARK_DATA_DIR": str(settings.data_dir),
        "LOOPMARK_TEMPLATES_DIR": str(settings.templates_dir),
        "LOOPMARK_RECORDS": settings.records_url,
        "LOOPMARK_STORAGE": settings.storage_url,
        "LOOPMARK_JSON_LOGS": "off",
        **extra,
    }


def test_production_needs_a_secret_key(app: Flask) -> None:
    with pytest.raises(ConfigInvalid, match="LOOPMARK_SECRET_KEY"):
        create_app(_bare_config(app))
    with pytest.raises(ConfigInvalid, match="at least 32"):
        create_app(_bare_config(app, LOOPMARK_SECRET_KEY="short"))
    key = "k" * 40
    with pytest.raises(ConfigInvalid, match="LOOPMARK_SITE_URL"):
        create_app(_bare_config(app, LOOPMARK_SECRET_KEY=key))
    configured = create_app(
        _bare_config(app, LOOPMARK_SECRET_KEY=key, LOOPMARK_SITE_URL="https://gifs.example")
    )
    try:
        assert configured.config["SECRET_KEY"] == key
        assert configured.config["SESSION_COOKIE_SECURE"] is True
    finally:
        configured.extensions["loopmark"].close()


def test_debug_makes_a_random_secret_key_per_process(app: Flask) -> None:
    first = create_app(_bare_config(app, LOOPMARK_DEBUG="1"))
    second = create_app(_bare_config(app, LOOPMARK_DEBUG="1"))
    try:
        assert len(first.config["SECRET_KEY"]) >= 32
        assert first.config["SECRET_KEY"] != second.config["SECRET_KEY"]
    finally:
        for made in (first, second):
            made.extensions["loopmark"].close()
