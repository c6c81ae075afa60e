"""Which language a request is answered in (web/i18n.py), and what that does to the page, its
headers and the API's error messages."""

from __future__ import annotations

import html as html_lib
import io
import re
from urllib.parse import urlsplit

import numpy as np
import pytest
from babel import Locale
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from PIL import Image

from loopmark.brand import demo_brand
from loopmark.renderer.card import CARD_HEIGHT, CARD_WIDTH, share_card
from loopmark.web import i18n
from tests.site.conftest import render_via_api

GERMAN_BROWSER = "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7"


def page_language(html: str) -> tuple[str, str]:
    found = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', html)
    assert found, html[:200]
    return found.group(1), found.group(2)


def h1(html: str) -> str:
    found = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    assert found
    return found.group(1).strip()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (GERMAN_BROWSER, "de"),
        ("de-AT", "de"),
        ("de-CH;q=0.8, fr;q=0.9", "de"),  # French is not offered: the next best is
        ("fr-FR,fr;q=0.9", "en"),
        ("en-GB,de;q=0.5", "en"),
        ("", "en"),
        ("*", "en"),
    ],
)
def test_the_page_follows_accept_language(client: FlaskClient, header: str, expected: str) -> None:
    response = client.get("/gallery", headers={"Accept-Language": header})
    assert response.status_code == 200
    assert page_language(response.get_data(as_text=True)) == (expected, "ltr")
    assert response.headers["Content-Language"] == expected
    # A cache must keep one copy per language: the page says what it depended on.
    assert {"Accept-Language", "Cookie"} <= set(response.vary)


@pytest.mark.parametrize(
    ("query", "cookie", "accept_language"),
    [
        ("", "", GERMAN_BROWSER),
        ("", "", "de-CH;q=0.8, fr;q=0.9"),
        ("", "", "en-GB,de;q=0.5"),
        ("", "", "de;q=0, en;q=0.1"),
        ("", "", "*"),
        ("", "", ""),
        ("lang=de", "", "en"),
        ("lang=xx", "", GERMAN_BROWSER),
        ("", "loopmark_lang=de", "en"),
        ("lang=en", "loopmark_lang=de", GERMAN_BROWSER),
        ("", "other=1; loopmark_lang=xx", GERMAN_BROWSER),
    ],
)
def test_outside_the_app_the_language_is_the_one_the_app_picks(
    app: Flask, query: str, cookie: str, accept_language: str
) -> None:
    """The server's own answers (given before the app sees a request) pick the language as the
    app does, from the same parts of the request."""
    headers = {"Accept-Language": accept_language, "Cookie": cookie}
    with app.test_request_context(f"/api/renders?{query}", headers=headers):
        expected = i18n.select_language()
    found = i18n.language_outside_app(query=query, cookie=cookie, accept_language=accept_language)
    assert found == expected


def test_each_language_is_parsed_once_and_still_chosen_per_request(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    real = Locale.parse

    def counting(identifier: object, *args: object, **kwargs: object) -> Locale:
        if isinstance(identifier, str):  # a Locale is taken as it is
            parsed.append(identifier)
        return real(identifier, *args, **kwargs)  # type: ignore[arg-type]

    i18n._locale.cache_clear()
    monkeypatch.setattr(Locale, "parse", counting)
    seen = []
    for header in ("de", "en", "de", "de-AT, en;q=0.5", "en"):
        with app.test_request_context(headers={"Accept-Language": header}):
            seen.append(i18n.current_language())
    assert seen == ["de", "en", "de", "de", "en"]
    assert sorted(parsed) == ["de", "en"]


def test_german_pages_are_german(client: FlaskClient) -> None:
    german = client.get("/gallery", headers={"Accept-Language": GERMAN_BROWSER})
    english = client.get("/gallery", headers={"Accept-Language": "en"})
    assert h1(german.get_data(as_text=True)) == "Die Galerie"
    assert h1(english.get_data(as_text=True)) == "The gallery"
    # Different bodies, different validators: no 304 across languages.
    assert german.headers["ETag"] != english.headers["ETag"]


def test_the_switch_is_remembered_and_beats_the_browser(app: Flask) -> None:
    client = app.test_client()
    chosen = client.get("/gallery?lang=de", headers={"Accept-Language": "en"})
    assert page_language(chosen.get_data(as_text=True))[0] == "de"
    cookie = chosen.headers["Set-Cookie"]
    assert cookie.startswith(f"{i18n.COOKIE_NAME}=de;") and "HttpOnly" in cookie
    # The answer that sets the cookie is nobody else's.
    assert chosen.headers["Cache-Control"] == "private, no-store"
    # Later visits without ?lang: the cookie wins over Accept-Language.
    later = client.get("/credits", headers={"Accept-Language": "en"})
    assert page_language(later.get_data(as_text=True))[0] == "de"
    assert later.headers["Cache-Control"].startswith("public")
    # Asking for the remembered language again sets nothing: the page stays cacheable.
    again = client.get("/gallery?lang=de")
    assert "Set-Cookie" not in again.headers
    assert again.headers["Cache-Control"].startswith("public")


def test_an_unknown_language_in_the_url_is_ignored(client: FlaskClient) -> None:
    response = client.get("/gallery?lang=xx", headers={"Accept-Language": "de"})
    assert page_language(response.get_data(as_text=True))[0] == "de"
    assert "Set-Cookie" not in response.headers


def test_every_page_offers_the_switch_to_the_same_page(client: FlaskClient) -> None:
    html = client.get("/credits?x=1", headers={"Accept-Language": "en"}).get_data(as_text=True)
    switch = re.search(r'<nav class="language-switch"[^>]*>(.*?)</nav>', html, re.S)
    assert switch, "no language switch"
    found = re.findall(r'<a href="([^"]+)" hreflang="(\w+)"', switch.group(1))
    links = {html_lib.unescape(url): lang for url, lang in found}
    assert set(links.values()) == {"en", "de"}
    assert {url for url, lang in links.items() if lang == "de"} == {"/credits?x=1&lang=de"}
    assert ">Deutsch</a>" in switch.group(1) and ">English</a>" in switch.group(1)
    # Alternates for search engines: absolute (relative ones are ignored), every language
    # including this page's own, and x-default (no lang: the visitor's Accept-Language).
    alternate = r'<link rel="alternate" hreflang="([\w-]+)" href="([^"]+)">'
    alternates = dict(re.findall(alternate, html))
    assert {k: html_lib.unescape(v) for k, v in alternates.items()} == {
        "en": "http://localhost/credits?x=1&lang=en",
        "de": "http://localhost/credits?x=1&lang=de",
        "x-default": "http://localhost/credits?x=1",
    }


def test_scripts_get_their_strings_from_the_page(client: FlaskClient) -> None:
    html = client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    block = re.search(r'<script type="application/json" id="hop-strings">(.*?)</script>', html)
    assert block
    assert "Link kopiert!" in block.group(1)
    assert "GIFs vor dir" in block.group(1)


def test_api_errors_speak_the_language_and_keep_their_code(client: FlaskClient) -> None:
    body = {"template": "small", "caption": "x" * 100}
    english = client.post("/api/captions/check", json=body, headers={"Accept-Language": "en"})
    german = client.post("/api/captions/check", json=body, headers={"Accept-Language": "de"})
    assert english.status_code == german.status_code == 422
    assert english.get_json()["error"]["code"] == german.get_json()["error"]["code"]
    assert english.get_json()["error"]["code"] == "caption_too_long"
    assert english.get_json()["error"]["message"] == (
        "Please keep it to 80 characters or fewer (this one has 100)."
    )
    assert german.get_json()["error"]["message"] == (
        "Bitte bleib bei höchstens 80 Zeichen (dieser Text hat 100)."
    )
    missing = client.post("/api/renders", json={"caption": "Hi"}, headers={"Accept-Language": "de"})
    assert missing.get_json()["error"]["code"] == "invalid_request"
    assert missing.get_json()["error"]["message"] == "Das Feld 'template' fehlt."


def test_error_pages_are_translated(client: FlaskClient) -> None:
    response = client.get("/no-such-page", headers={"Accept-Language": "de"})
    assert response.status_code == 404
    assert h1(response.get_data(as_text=True)) == "Dieser Loop ist weggehoppelt"


def test_admin_pages_are_translated(client: FlaskClient) -> None:
    response = client.get("/admin/login", headers={"Accept-Language": "de"})
    html = response.get_data(as_text=True)
    assert page_language(html)[0] == "de"
    assert h1(html) == "Anmelden"
    assert '<label for="password">Passwort</label>' in html


@pytest.mark.parametrize(("code", "direction"), [("en", "ltr"), ("de", "ltr"), ("ar", "rtl"),
                                                  ("he", "rtl"), ("fa", "rtl")])  # fmt: skip
def test_direction_comes_from_the_locale(code: str, direction: str) -> None:
    assert i18n.text_direction(code) == direction


@pytest.mark.parametrize(
    ("asked", "expected"),
    [("de", "de"), ("DE", "de"), ("de_AT", "de"), ("en-GB", "en"), ("fr", None), ("", None)],
)
def test_supported(asked: str, expected: str | None) -> None:
    assert i18n.supported(asked) == expected


def test_share_page_speaks_its_captions_language(demo_app: Flask) -> None:
    """A German predefined caption: its render records "de", and its share page is German for
    every visitor (unless one asks for another language in the URL)."""
    client = demo_app.test_client()
    done = render_via_api(client, "Überraschende Wendung", template="head-scratch")
    record = demo_app.extensions["loopmark"].render.record(done["key"])
    assert record.media["lang"] == "de"
    share = client.get(f"/s/{done['key']}", headers={"Accept-Language": "en-US,en"})
    html = share.get_data(as_text=True)
    assert page_language(html)[0] == "de"
    assert "Mach dein eigenes" in html
    assert share.headers["Content-Language"] == "de"
    asked = client.get(f"/s/{done['key']}?lang=en", headers={"Accept-Language": "en"})
    assert "Make your own" in asked.get_data(as_text=True)
    # The visitor's own words carry no language: the page follows the visitor.
    own = render_via_api(client, "Meine eigenen Worte", template="wake-up")
    assert "lang" not in demo_app.extensions["loopmark"].render.record(own["key"]).media
    english = client.get(f"/s/{own['key']}", headers={"Accept-Language": "en"})
    assert page_language(english.get_data(as_text=True))[0] == "en"


def test_translations_are_trusted_and_their_values_escaped(app: Flask) -> None:
    """The page's gettext (web/i18n.py: bound to the request's catalogue) marks a translation
    safe (it may hold markup) and escapes what is filled into it (a visitor's caption)."""
    page = (
        '{{ _("“%(caption)s”", caption=caption) }}|'
        "{% trans url='/x' %}Making a GIF needs JavaScript. You can still browse the "
        '<a href="{{ url }}">gallery</a>.{% endtrans %}'
    )
    with app.test_request_context("/", headers={"Accept-Language": "de"}):
        html = render_template_string(page, caption='<img src=x onerror="alert(1)">')
    quoted, trans = html.split("|")
    assert quoted == "„&lt;img src=x onerror=&#34;alert(1)&#34;&gt;“"
    assert trans == (
        'Zum GIF-Machen brauchst du JavaScript. Die <a href="/x">Galerie</a> kannst du dir '
        "trotzdem ansehen."
    )


def test_template_names_speak_the_page_language(demo_app: Flask) -> None:
    """template.toml's [name] table: the API carries every language's name (it stays one shared
    answer), the credits page shows the page's language's."""
    client = demo_app.test_client()
    listed = {t["id"]: t for t in client.get("/api/templates").get_json()}
    assert listed["wake-up"]["name"] == "Wake up"
    assert listed["wake-up"]["names_by_language"] == {"en": "Wake up", "de": "Aufwachen"}
    german = client.get("/credits", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "<strong>Aufwachen</strong>" in german and "<strong>Kopfkratzen</strong>" in german
    assert "<strong>Wake up</strong>" not in german
    english = client.get("/credits", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "<strong>Wake up</strong>" in english


def _brand_band(card: bytes) -> np.ndarray:
    """The strip under the frame where the card writes the brand's line, as numbers."""
    image = Image.open(io.BytesIO(card)).convert("L")
    assert image.size == (CARD_WIDTH, CARD_HEIGHT)
    return np.asarray(image.crop((0, CARD_HEIGHT - 100, CARD_WIDTH, CARD_HEIGHT)), dtype=float)


def _nearest_line(card: bytes) -> str:
    """Which brand line (English or German) the card's strip shows."""
    band = _brand_band(card)
    lines = ("Made with Hop & Co.", "Gemacht mit Hop & Co.")
    drawn = {
        line: _brand_band(share_card(Image.new("RGB", (480, 270)), demo_brand(), line=line))
        for line in lines
    }
    return min(lines, key=lambda line: float(np.abs(band - drawn[line]).mean()))


def test_share_cards_speak_the_captions_language(demo_app: Flask) -> None:
    """A render's card is one image for every viewer: its words follow the caption (a German
    predefined caption: German), the brand's language for a visitor's own words."""
    client = demo_app.test_client()
    service = demo_app.extensions["loopmark"].render
    german = render_via_api(client, "Überraschende Wendung", template="head-scratch")
    own = render_via_api(client, "Ganz eigene Worte", template="wake-up")
    cards = {}
    for name, done in (("german", german), ("own", own)):
        record = service.record(done["key"])
        cards[name] = service.blobs.get(record.media["card"])
    assert _nearest_line(cards["german"]) == "Gemacht mit Hop & Co."
    assert _nearest_line(cards["own"]) == "Made with Hop & Co."


def test_the_site_card_speaks_the_page_language(client: FlaskClient) -> None:
    """The home page's og:image is worded in the page's language (its own URL per language)."""
    urls = {}
    for language in ("en", "de"):
        html = client.get("/", headers={"Accept-Language": language}).get_data(as_text=True)
        found = re.search(r'<meta property="og:image" content="([^"]+)"', html)
        assert found
        urls[language] = urlsplit(html_lib.unescape(found.group(1))).path
    assert urls["en"] != urls["de"] and urls["de"].endswith("/de.jpg")
    cards = {language: client.get(path).get_data() for language, path in urls.items()}
    assert _nearest_line(cards["de"]) == "Gemacht mit Hop & Co."
    assert _nearest_line(cards["en"]) == "Made with Hop & Co."
    assert client.get(urls["de"].replace("/de.jpg", "/fr.jpg")).status_code == 404
