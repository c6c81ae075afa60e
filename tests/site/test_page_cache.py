"""Share pages rendered once and reused (site.page_cache): the same bytes for the same inputs,
yet a take-down, another language or another address shows at once; bounded; compressed once
per encoding. A done render's JSON is kept the same way."""

from __future__ import annotations

import gzip
from typing import Any

import brotli
import pytest
from flask import Flask

from loopmark.site import page_cache
from loopmark.site.page_cache import PageCache, done_outcomes, share_pages
from loopmark.web.assets import compress_once
from tests.site.conftest import render_service


def cache_of(app: Flask) -> PageCache:
    with app.app_context():
        return share_pages()


def test_a_done_share_page_is_rendered_once_then_reused(app: Flask, done: dict[str, Any]) -> None:
    client = app.test_client()
    first = client.get(f"/s/{done['key']}")
    assert first.status_code == 200
    assert len(cache_of(app)) == 1
    again = client.get(f"/s/{done['key']}")
    assert again.get_data() == first.get_data()
    assert len(cache_of(app)) == 1
    # Headers are still the response's own: cacheable, with its language.
    assert "no-store" not in again.headers.get("Cache-Control", "")
    assert again.headers["Content-Language"] == first.headers["Content-Language"]


def test_language_and_address_are_part_of_the_page(app: Flask, done: dict[str, Any]) -> None:
    client = app.test_client()
    english = client.get(f"/s/{done['key']}?lang=en").get_data(as_text=True)
    german = client.get(f"/s/{done['key']}?lang=de").get_data(as_text=True)
    assert 'lang="de"' in german and 'lang="de"' not in english.split(">", 2)[1]
    assert len(cache_of(app)) == 2
    # Any value of lang gives one of the pages kept already: a stream of ?lang=<random> misses
    # no cache (each miss would cost a page and its brotli 11).
    for junk in ("xx", "zz-ZZ", "EN", "en-GB", ""):
        client.get(f"/s/{done['key']}?lang={junk}")
    assert len(cache_of(app)) == 2
    # Other arguments are repeated in the language links: made afresh, never kept (or cycling
    # them would push every kept page out).
    for n in range(3):
        tagged = client.get(f"/s/{done['key']}?lang=en&utm_source=qr{n}").get_data(as_text=True)
        assert f"utm_source=qr{n}" in tagged and "utm_source" not in english
    assert len(cache_of(app)) == 2


def test_a_take_down_shows_at_once_over_a_kept_page(app: Flask, done: dict[str, Any]) -> None:
    client = app.test_client()
    assert client.get(f"/s/{done['key']}").status_code == 200
    render_service(app).take_down(done["key"], reason="test")
    gone = client.get(f"/s/{done['key']}")
    assert gone.status_code == 410
    assert done["caption"] not in gone.get_data(as_text=True)


def test_a_page_not_done_is_never_kept(app: Flask) -> None:
    key = "d" * 24
    service = render_service(app)
    service.records.enqueue(key, template_id="small", caption="Soon", words_version=None)
    client = app.test_client()
    assert client.get(f"/s/{key}").headers["Cache-Control"] == "no-store"
    assert len(cache_of(app)) == 0


def test_the_cache_is_bounded_least_recently_used_first_out() -> None:
    cache = PageCache(max_pages=2)
    made: list[str] = []

    def page(name: str) -> str:
        made.append(name)
        return f"<p>{name}</p>"

    assert cache.get_or_render("a", lambda: page("a")) == "<p>a</p>"
    cache.get_or_render("b", lambda: page("b"))
    cache.get_or_render("a", lambda: page("a"))  # kept: a is now the most recent
    cache.get_or_render("c", lambda: page("c"))  # b goes
    cache.get_or_render("a", lambda: page("a"))
    cache.get_or_render("b", lambda: page("b"))
    assert made == ["a", "b", "c", "b"]
    assert len(cache) == 2


def test_a_kept_page_is_sent_compressed_once_per_encoding(
    app: Flask, done: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    compressed: list[str] = []

    def counted(data: bytes, encoding: str) -> bytes:
        compressed.append(encoding)
        return compress_once(data, encoding)

    monkeypatch.setattr(page_cache, "compress_once", counted)
    client = app.test_client()
    url = f"/s/{done['key']}"
    plain = client.get(url)
    assert "Content-Encoding" not in plain.headers
    html = plain.get_data()
    for encoding, decode in (("br", brotli.decompress), ("gzip", gzip.decompress)):
        first = client.get(url, headers={"Accept-Encoding": f"{encoding}, identity"})
        again = client.get(url, headers={"Accept-Encoding": f"{encoding}, identity"})
        assert first.headers["Content-Encoding"] == encoding
        assert "Accept-Encoding" in first.headers["Vary"]
        assert decode(first.get_data()) == html
        assert again.get_data() == first.get_data()
        assert int(first.headers["Content-Length"]) == len(first.get_data())
        # Its own ETag (another encoding's body is another entity): a match is answered 304.
        etag = first.headers["ETag"]
        assert etag != plain.headers["ETag"]
        match = {"Accept-Encoding": encoding, "If-None-Match": etag}
        assert client.get(url, headers=match).status_code == 304
    assert compressed == ["br", "gzip"]  # once each, for both requests
    # A browser taking both gets brotli, the smaller.
    both = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert both.headers["Content-Encoding"] == "br"
    # A page made afresh (other arguments) is still compressed, per response.
    tagged = client.get(f"{url}?utm_source=qr", headers={"Accept-Encoding": "gzip"})
    assert tagged.headers["Content-Encoding"] == "gzip"
    assert b"utm_source=qr" in gzip.decompress(tagged.get_data())


def test_a_kept_page_pushed_out_meanwhile_is_still_compressed() -> None:
    cache = PageCache(max_pages=1)
    cache.get_or_render("a", lambda: "<p>a</p>" * 200)
    sent = cache.encoded("a", "br")
    assert sent is not None and brotli.decompress(sent[0]) == b"<p>a</p>" * 200
    cache.get_or_render("b", lambda: "<p>b</p>")
    assert cache.encoded("a", "br") is None  # not kept: flask-compress compresses it instead


def test_a_done_renders_json_is_made_once_per_record(app: Flask, done: dict[str, Any]) -> None:
    client = app.test_client()
    url = f"/api/renders/{done['key']}"
    with app.app_context():
        kept = done_outcomes()
        before = len(kept)
    first = client.get(url)
    again = client.get(url)
    assert first.status_code == again.status_code == 200
    assert again.get_data() == first.get_data()
    assert first.get_json() == done
    assert first.mimetype == "application/json"
    assert len(kept) == before  # the API's own render already kept it
    # The POST that finds it done answers the very same JSON.
    hit = client.post("/api/renders", json={"template": done["template"], "caption": "Media"})
    assert hit.status_code == 200 and hit.get_data() == first.get_data()
    assert hit.headers["Cache-Control"] == "no-store"
    assert "no-store" not in first.headers["Cache-Control"]
    # A take-down shows at once: the record is read on every request, before the cache.
    render_service(app).take_down(done["key"], reason="test")
    assert client.get(url).status_code == 410


def test_without_a_site_url_each_host_gets_its_own_links(app: Flask, done: dict[str, Any]) -> None:
    """Debug, no LOOPMARK_SITE_URL: absolute links follow the request's host, so the kept JSON
    and page are kept per host (in production they all use the site URL)."""
    assert not app.config.get("SITE_URL")
    client = app.test_client()
    for host in ("http://one.example", "http://two.example", "http://one.example"):
        answer = client.get(f"/api/renders/{done['key']}", base_url=host).get_json()
        assert answer["share_url"] == f"{host}/s/{done['key']}"
        page = client.get(f"/s/{done['key']}", base_url=host).get_data(as_text=True)
        assert f'href="{host}/s/{done["key"]}"' in page
