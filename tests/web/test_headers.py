"""Headers on every answer: caching for a CDN (static, HTML with ETag/304, API), security headers,
compression, error pages without tracebacks, request ids and the JSON access log."""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any

import pytest
from flask import Flask, Response, request, session
from flask.testing import FlaskClient
from werkzeug.wrappers import Response as WerkzeugResponse

from loopmark.web import logs
from loopmark.web.assets import asset_url, fingerprint
from loopmark.web.logs import ACCESS_LOGGER, PACKAGE_LOGGER, JsonFormatter, configure_logging
from tests.site.conftest import MakeApp, render_via_api, site_services

IMMUTABLE = "public, max-age=31536000, immutable"
FONT = "fonts/NotoSans-Bold.ttf"
HTML = "<!doctype html><title>t</title><p>" + "hello " * 200


@pytest.fixture
def html_app(make_app: MakeApp) -> Flask:
    """The site plus a few test-only views (added before the first request)."""
    app = make_app()

    def page() -> str:
        return HTML

    def own_cache() -> Response:
        response = app.response_class(HTML, mimetype="text/html")
        response.headers["Cache-Control"] = "private, max-age=5"
        return response

    def with_session() -> str:
        session["seen"] = True
        return HTML

    def reads_session() -> str:
        return HTML + str(session.get("user"))

    def boom() -> str:
        raise RuntimeError("secret detail /etc/passwd")

    app.add_url_rule("/test/page", "test_page", page)
    app.add_url_rule("/test/own-cache", "test_own_cache", own_cache)
    app.add_url_rule("/test/session", "test_session", with_session)
    app.add_url_rule("/test/reads-session", "test_reads_session", reads_session)
    app.add_url_rule("/test/boom", "test_boom", boom)
    app.add_url_rule("/api/test-boom", "api_test_boom", boom)
    return app


@pytest.fixture
def html_client(html_app: Flask) -> FlaskClient:
    return html_app.test_client()


# -- security headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/templates", "/test/page", "/healthz", "/nothing-here", f"/static/{FONT}"]
)
def test_security_headers_on_every_answer(html_client: FlaskClient, path: str) -> None:
    with html_client.get(path) as response:
        headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert headers["X-Frame-Options"] == "DENY"
    csp = {
        directive.split(" ", 1)[0]: directive.split(" ", 1)[1]
        for directive in headers["Content-Security-Policy"].split("; ")
    }
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in headers  # plain HTTP here


def test_hsts_over_https(client: FlaskClient) -> None:
    response = client.get("/api/templates", base_url="https://gifs.example")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_behind_a_proxy_the_forwarded_client_and_scheme_count(make_app: MakeApp) -> None:
    app = make_app(LOOPMARK_PROXY_HOPS="1", LOOPMARK_RATE_LIMIT_CAPTIONS="1/minute")
    client = app.test_client()
    body = {"template": "small", "caption": "Hi"}
    forwarded = {"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "https"}
    first = client.post("/api/captions/check", json=body, headers=forwarded)
    assert first.status_code == 200
    assert first.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert client.post("/api/captions/check", json=body, headers=forwarded).status_code == 429
    # Another visitor behind the same proxy has a budget of their own.
    other = {"X-Forwarded-For": "198.51.100.2"}
    assert client.post("/api/captions/check", json=body, headers=other).status_code == 200


def test_a_view_may_set_its_own_csp(html_app: Flask) -> None:
    def graphiql() -> Response:
        response = html_app.response_class("<html>", mimetype="text/html")
        response.headers["Content-Security-Policy"] = "default-src 'self' https://unpkg.com"
        return response

    html_app.add_url_rule("/test/graphiql", "test_graphiql", graphiql)
    csp = html_app.test_client().get("/test/graphiql").headers["Content-Security-Policy"]
    assert csp == "default-src 'self' https://unpkg.com"


# -- caching -----------------------------------------------------------------------------------


def test_html_is_briefly_public_with_etag_and_304(html_client: FlaskClient) -> None:
    first = html_client.get("/test/page")
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "public, max-age=60, stale-while-revalidate=600"
    etag = first.headers["ETag"]
    again = html_client.get("/test/page", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert html_client.get("/test/page", headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize(
    "validator", ["If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"]
)
def test_every_validator_still_reaches_make_conditional(
    html_client: FlaskClient, monkeypatch: pytest.MonkeyPatch, validator: str
) -> None:
    # A page asked without any validator skips werkzeug's make_conditional (it would change
    # nothing); one asked with any validator goes through it, as before.
    calls: list[str] = []
    real = Response.make_conditional

    # Typed as werkzeug types the method it stands in for (it answers the response itself).
    def counting(self: Response, *args: Any, **kwargs: Any) -> WerkzeugResponse:
        calls.append(validator)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Response, "make_conditional", counting)
    first = html_client.get("/test/page")
    assert first.status_code == 200 and calls == []
    value = first.headers["ETag"] if "Match" in validator else first.headers["Date"]
    answer = html_client.get("/test/page", headers={validator: value})
    assert calls == [validator]
    assert answer.status_code == (304 if validator == "If-None-Match" else 200)


def test_html_with_compression_still_revalidates(html_client: FlaskClient) -> None:
    gz = {"Accept-Encoding": "gzip"}
    first = html_client.get("/test/page", headers=gz)
    assert first.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(first.data).decode() == HTML
    assert "Accept-Encoding" in first.headers["Vary"]
    again = html_client.get("/test/page", headers={**gz, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_a_view_keeps_its_own_cache_control(html_client: FlaskClient) -> None:
    assert html_client.get("/test/own-cache").headers["Cache-Control"] == "private, max-age=5"


@pytest.mark.parametrize("path", ["/test/session", "/test/reads-session"])
def test_pages_that_use_the_session_are_never_stored(html_client: FlaskClient, path: str) -> None:
    response = html_client.get(path)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"


def test_state_changing_api_answers_are_not_stored(client: FlaskClient) -> None:
    checked = client.post("/api/captions/check", json={"template": "small", "caption": "Hi"})
    assert checked.headers["Cache-Control"] == "no-store"
    assert client.get("/healthz").headers["Cache-Control"] == "no-store"
    assert client.get("/api/nothing").headers["Cache-Control"] == "no-store"


def test_fingerprinted_static_assets_are_immutable(app: Flask, client: FlaskClient) -> None:
    with app.test_request_context():
        url = asset_url(FONT)
        version = fingerprint(FONT)
    assert version is not None
    assert url == f"/static/{FONT}?v={version}"
    with client.get(url) as response:
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == IMMUTABLE
    with client.get(f"/static/{FONT}?v=stale") as stale:
        assert stale.headers["Cache-Control"] == "no-cache"
    with client.get(f"/static/{FONT}") as bare:
        assert bare.headers["Cache-Control"] == "no-cache"
    missing = client.get("/static/css/missing.css?v=abc")
    assert missing.status_code == 404
    assert missing.headers["Cache-Control"] != IMMUTABLE


def test_asset_url_of_a_missing_file_has_no_fingerprint(app: Flask) -> None:
    with app.test_request_context():
        assert asset_url("css/nope.css") == "/static/css/nope.css"
        assert asset_url("../setup.cfg") == "/static/../setup.cfg"
        assert fingerprint("../setup.cfg") is None


def test_text_is_compressed_and_media_are_not(client: FlaskClient) -> None:
    metrics = client.get("/metrics", headers={"Accept-Encoding": "br, gzip"})
    assert metrics.headers["Content-Encoding"] == "br"
    done = render_via_api(client, "Not compressed")
    with client.get(done["gif_url"], headers={"Accept-Encoding": "gzip"}) as gif:
        assert "Content-Encoding" not in gif.headers
        assert gif.data[:6] == b"GIF89a"


# -- errors ------------------------------------------------------------------------------------


def test_unknown_pages_are_html_404s(client: FlaskClient) -> None:
    response = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "public, max-age=60"


def test_json_clients_get_json_404s(client: FlaskClient) -> None:
    response = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/test/boom", "/api/test-boom"])
def test_unexpected_errors_are_500s_without_details(
    html_client: FlaskClient, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="loopmark"):
        response = html_client.get(path)
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "secret detail" not in text
    assert response.headers["Cache-Control"] == "no-store"
    if path.startswith("/api/"):
        assert response.get_json()["error"]["code"] == "internal_error"
    else:
        assert response.mimetype == "text/html"
    # The details go to the log instead.
    assert any("RuntimeError" in r.getMessage() and r.exc_info for r in caplog.records)


# -- request ids and logs ----------------------------------------------------------------------


def test_request_ids_are_echoed_or_made(client: FlaskClient) -> None:
    echoed = client.get("/healthz", headers={"X-Request-Id": "lb-1234.abc"})
    assert echoed.headers["X-Request-Id"] == "lb-1234.abc"
    for bad in ("two words", "<script>", "x" * 200, ""):
        made = client.get("/healthz", headers={"X-Request-Id": bad})
        assert made.headers["X-Request-Id"] != bad
        assert len(made.headers["X-Request-Id"]) == 32  # a fresh uuid4 hex


def test_one_access_line_per_request_with_the_render_key(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        response = client.post(
            "/api/renders",
            json={"template": "small", "caption": "Logged"},
            headers={"X-Request-Id": "req-42"},
        )
    key = response.get_json()["key"]
    lines = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 1
    record = lines[0]
    assert record.request_id == "req-42"  # type: ignore[attr-defined]
    assert record.render_key == key  # type: ignore[attr-defined]
    assert record.status == response.status_code  # type: ignore[attr-defined]
    assert record.method == "POST" and record.path == "/api/renders"  # type: ignore[attr-defined]
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "info"
    assert line["request_id"] == "req-42"
    assert line["render_key"] == key
    assert isinstance(line["duration_ms"], float)
    assert line["time"].endswith("+00:00")


def test_small_answers_are_not_compressed(client: FlaskClient) -> None:
    done = render_via_api(client, "Fits one packet")
    answer = client.get(f"/api/renders/{done['key']}", headers={"Accept-Encoding": "br, gzip"})
    assert answer.status_code == 200
    assert "Content-Encoding" not in answer.headers
    assert 0 < len(answer.data) < 1024
    assert answer.get_json()["key"] == done["key"]


def test_the_session_is_read_only_from_its_cookie(app: Flask) -> None:
    interface = app.session_interface
    with app.test_request_context():
        fresh = interface.open_session(app, request)
        assert fresh is not None and dict(fresh) == {} and not fresh.modified
        fresh["who"] = "admin"
        signed = interface.get_signing_serializer(app).dumps(dict(fresh))  # type: ignore[attr-defined]
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={signed}"
    with app.test_request_context(headers={"Cookie": cookie}):
        assert dict(interface.open_session(app, request) or {}) == {"who": "admin"}
    forged = f"{app.config['SESSION_COOKIE_NAME']}={signed[:-2]}xx"
    with app.test_request_context(headers={"Cookie": forged}):
        assert dict(interface.open_session(app, request) or {}) == {}


def test_the_access_line_counts_the_calls_sent_to_each_backend(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Each line says how many calls its request sent to the records (through the breaker), so
    the records' load can be told by endpoint (bench.soak counts them)."""
    key = render_via_api(client, "Counted")["key"]
    site_services(client.application).render.records.forget(key)  # not kept: read it again
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.get(f"/api/renders/{key}")
        client.get("/static/css/site.css").close()
    status, static = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert json.loads(JsonFormatter().format(status))["records_calls"] == 1  # one GetItem
    assert "records_calls" not in json.loads(JsonFormatter().format(static))


def test_the_access_line_written_straight_is_the_line_logging_writes(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With nothing but our JSON handler listening (production), the access line skips the
    logging machinery; it must be the very line that machinery writes."""
    configure_logging()
    package = logging.getLogger(PACKAGE_LOGGER)
    monkeypatch.setattr(package, "level", logging.INFO)
    key = render_via_api(client, "Straight")["key"]
    headers = {"X-Request-Id": "req-7"}

    def access_lines() -> list[dict[str, object]]:
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        return [line for line in lines if line["logger"] == ACCESS_LOGGER]

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the access line went through logging")

    capsys.readouterr()
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # pytest's own, set aside
    with monkeypatch.context() as straight:
        straight.setattr(logs._access_log, "info", refused)
        client.get(f"/api/renders/{key}", headers=headers)
    [fast] = access_lines()
    # Another handler listening (an embedding application's): through logging, as before.
    monkeypatch.setattr(logging.getLogger(), "handlers", [logging.NullHandler()])
    client.get(f"/api/renders/{key}", headers=headers)
    [slow] = access_lines()
    assert list(fast) == list(slow)  # the same fields, in the same order
    for field in ("time", "duration_ms"):
        fast.pop(field), slow.pop(field)
    assert fast == slow
    assert fast["message"] == f"GET /api/renders/{key} 200"
    assert fast["render_key"] == key and fast["request_id"] == "req-7"
