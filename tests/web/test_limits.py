"""Event-friendly limits: per visitor token, a per-address ceiling, a site-wide render admission;
cache hits never count."""

from __future__ import annotations

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from flask_limiter import Limiter
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from loopmark.web.limits import VISITOR_HEADER, RenderAdmission, RenderRefused, scaled
from tests.site.conftest import MakeApp, render_via_api, wait_done

VISITORS = 200


def admission(site: str = "600/minute") -> RenderAdmission:
    return RenderAdmission(MovingWindowRateLimiter(MemoryStorage()), "30/minute", 20, site)


def test_a_venue_of_visitors_behind_one_address_is_not_refused() -> None:
    # Keyed by address alone (before), 170 of these 200 were refused.
    gate = admission()
    for n in range(VISITORS):
        gate.admit(f"visitor:{n}", "203.0.113.1")


def test_one_visitor_hammering_is_limited_and_others_are_not() -> None:
    gate = admission()
    for _ in range(30):
        gate.admit("visitor:loud", "203.0.113.1")
    with pytest.raises(RenderRefused) as refused:
        gate.admit("visitor:loud", "203.0.113.1")
    assert refused.value.scope == "visitor"
    assert 1 <= refused.value.retry_after_s <= 60
    gate.admit("visitor:quiet", "203.0.113.1")


def test_the_address_ceiling_and_the_site_admission() -> None:
    gate = admission(site="5/minute")
    for n in range(5):
        gate.admit(f"visitor:{n}", f"203.0.113.{n}")
    with pytest.raises(RenderRefused) as refused:
        gate.admit("visitor:late", "203.0.113.99")
    assert refused.value.scope == "site"
    rotating = admission()
    for n in range(600):  # 20 visitors' worth from one address, tokens rotated each time
        rotating.admit(f"visitor:{n}", "198.51.100.1")
    with pytest.raises(RenderRefused) as refused:
        rotating.admit("visitor:new", "198.51.100.1")
    assert refused.value.scope == "address"


def test_scaled_limits() -> None:
    assert scaled("30/minute;300/hour", 20) == "600 per 1 minute;6000 per 1 hour"


def token(client: FlaskClient) -> str:
    response = client.get("/api/visitor")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    return str(response.get_json()["token"])


def render(client: FlaskClient, caption: str, visitor: str | None) -> int:
    headers = {VISITOR_HEADER: visitor} if visitor else {}
    response = client.post(
        "/api/renders", json={"template": "small", "caption": caption}, headers=headers
    )
    return response.status_code


@pytest.fixture
def strict(make_app: MakeApp) -> Flask:
    return make_app(
        LOOPMARK_RATE_LIMIT_RENDERS="1/minute",
        LOOPMARK_RATE_LIMIT_ADDRESS_FACTOR="100",
        LOOPMARK_RENDER_ADMISSION="1000/minute",
    )


def test_visitors_with_tokens_count_apart(strict: Flask) -> None:
    client = strict.test_client()
    assert render(client, "First visitor", token(client)) in (200, 202)
    assert render(client, "Second visitor", token(client)) in (200, 202)


def test_a_forged_token_counts_as_no_token(strict: Flask) -> None:
    client = strict.test_client()
    real = token(client)
    forged = real[:-3] + ("AAA" if not real.endswith("AAA") else "BBB")
    assert render(client, "No token", None) in (200, 202)
    response = client.post(
        "/api/renders",
        json={"template": "small", "caption": "Forged"},
        headers={VISITOR_HEADER: forged},
    )
    assert response.status_code == 429  # the address's (token-less) budget is used up
    assert "address" not in response.get_json()["error"]["message"]
    assert int(response.headers["Retry-After"]) >= 1


def test_cache_hits_never_count(strict: Flask) -> None:
    client = strict.test_client()
    visitor = token(client)
    headers = {VISITOR_HEADER: visitor}
    done = render_via_api_as(client, "Cached once", headers)
    for _ in range(5):  # the visitor's one render a minute is used: hits still answer
        response = client.post(
            "/api/renders", json={"template": "small", "caption": "Cached once"}, headers=headers
        )
        assert response.status_code == 200
        assert response.get_json()["key"] == done["key"]
    assert render(client, "A new one", visitor) == 429


def render_via_api_as(
    client: FlaskClient, caption: str, headers: dict[str, str]
) -> dict[str, object]:
    response = client.post(
        "/api/renders", json={"template": "small", "caption": caption}, headers=headers
    )
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    body = response.get_json()
    return body if response.status_code == 200 else wait_done(client, body["key"])


def test_the_site_admission_answers_503_with_retry_after(make_app: MakeApp) -> None:
    client = make_app(LOOPMARK_RENDER_ADMISSION="1/minute").test_client()
    render_via_api(client, "Admitted")
    response = client.post(
        "/api/renders",
        json={"template": "small", "caption": "Not now"},
        headers={VISITOR_HEADER: token(client)},
    )
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "busy"
    assert int(response.headers["Retry-After"]) >= 1


def test_flask_limiter_runs_only_where_a_limit_applies(
    strict: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cache hits and pages have no Flask-Limiter limit: its hooks (a tenth of a hit's CPU)
    # are skipped there, and still run where a limit applies.
    client = strict.test_client()
    done = render_via_api_as(client, "Counted apart", {})
    resolved: list[str | None] = []
    identify = Limiter.identify_request

    def spy(self: Limiter) -> str:
        resolved.append(request.endpoint)
        return identify(self)

    monkeypatch.setattr(Limiter, "identify_request", spy)
    hit = client.post("/api/renders", json={"template": "small", "caption": "Counted apart"})
    assert hit.status_code == 200
    assert client.get(f"/api/renders/{done['key']}").status_code == 200
    assert resolved == []
    assert client.get("/api/visitor").status_code == 200
    assert resolved and set(resolved) == {"api.visitor_token"}
