"""What the site shows of the brand (``Settings.brand``, from brand.toml): ``brand`` in every
template (site and admin), its colours as /brand.css, the site's own 1200×630 share card, and the
privacy and terms pages.

The colours are a stylesheet of custom properties rather than inline style (the CSP forbids
inline style); it and the card carry the brand's version in their URL and are cached for a year.
The card is drawn once per process by ``renderer.card.site_card`` from the brand's card picture.
"""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from loopmark.brand import Brand, BrandPage
from loopmark.renderer.card import site_card
from loopmark.service.languages import translate
from loopmark.storage.base import IMMUTABLE_CACHE_CONTROL
from loopmark.web import i18n
from loopmark.web.context import services

blueprint = Blueprint("brand", __name__, template_folder="templates")

REVALIDATE = "no-cache"
# site.css's custom properties, and the brand colour each one takes.
CSS_PROPERTIES = (
    ("--purple", "primary"),
    ("--purple-dark", "primary_dark"),
    ("--orange", "accent"),
    ("--orange-dark", "accent_dark"),
    ("--cream", "background"),
    ("--cream-deep", "background_deep"),
    ("--ink", "ink"),
)


def current_brand() -> Brand:
    return services().settings.brand


@blueprint.app_context_processor
def _brand_context() -> dict[str, Any]:
    """``brand`` for every template, the admin's too (it reads the same brand.toml)."""
    return {
        "brand": current_brand(),
        "brand_css_url": _brand_css_url,
        "brand_page_title": page_title,
        "brand_page_url": page_url,
    }


def _brand_css_url() -> str:
    return url_for("brand.stylesheet", v=current_brand().version)


def site_card_url() -> str:
    """The site's card image (a path: the caller makes it absolute), worded in the page's
    language: a page shared from the German site previews with German words."""
    brand = current_brand()
    language = i18n.current_language()
    if language == brand.language:
        return url_for("brand.card", version=brand.version)
    return url_for("brand.card_in", version=brand.version, language=language)


@blueprint.get("/brand.css")
def stylesheet() -> ResponseReturnValue:
    brand = current_brand()
    body = _stylesheet(brand)
    return _versioned(Response(body, mimetype="text/css"), request.args.get("v"), brand)


@blueprint.get("/card/<version>.jpg")
def card(version: str) -> ResponseReturnValue:
    brand = current_brand()
    body = _card_bytes(brand, brand.language)
    return _versioned(Response(body, mimetype="image/jpeg"), version, brand)


@blueprint.get("/card/<version>/<language>.jpg")
def card_in(version: str, language: str) -> ResponseReturnValue:
    """The site's card in one of the site's languages (404 for any other)."""
    chosen = i18n.supported(language)
    if chosen != language:
        abort(404)
    brand = current_brand()
    body = _card_bytes(brand, chosen)
    return _versioned(Response(body, mimetype="image/jpeg"), version, brand)


@blueprint.get("/privacy")
def privacy() -> ResponseReturnValue:
    return _page(current_brand().privacy, "privacy")


@blueprint.get("/terms")
def terms() -> ResponseReturnValue:
    return _page(current_brand().terms, "terms")


def _page(page: BrandPage, kind: str) -> ResponseReturnValue:
    """The page in the visitor's language when the brand wrote it in that language
    (``[pages.privacy.de]``), else as the brand wrote it, marked with the brand's language."""
    language = i18n.current_language()
    shown = page.in_language(language)
    if shown.url:  # the brand keeps the page on its own site
        return redirect(shown.url, code=302)
    if not shown.blocks:
        abort(404)
    text_language = language if page.is_translated(language) else current_brand().language
    return render_template(
        "brand_page.html",
        page=shown,
        title=page_title(page),
        kind=kind,
        text_lang=text_language,
    )


def page_title(page: BrandPage) -> str:
    """A brand page's title in the visitor's language: the brand's own translation, else the
    catalogue's (the demo brand's titles are in it), else as written."""
    language = i18n.current_language()
    if page.is_translated(language):
        return page.in_language(language).title
    return i18n.gettext(page.title)


def page_url(page: BrandPage, endpoint: str) -> str:
    """Where a footer link to a brand page goes: the brand's own page in the visitor's
    language when it has one, else this site's page."""
    return page.in_language(i18n.current_language()).url or url_for(endpoint)


def _versioned(response: Response, asked: str | None, brand: Brand) -> Response:
    """Immutable under the brand's current version; revalidated under any other (a page cached
    before the brand changed still gets the current file)."""
    current = asked == brand.version
    response.headers["Cache-Control"] = IMMUTABLE_CACHE_CONTROL if current else REVALIDATE
    return response


def _stylesheet(brand: Brand) -> str:
    colours = brand.colours
    lines = [f"  {prop}: {getattr(colours, name)};" for prop, name in CSS_PROPERTIES]
    return ":root {\n" + "\n".join(lines) + "\n}\n"


@functools.lru_cache(maxsize=8)
def _card_bytes(brand: Brand, language: str) -> bytes:
    """The site's card drawn once per brand and language (its words through the catalogues:
    the demo brand's are in them)."""
    if language == brand.language:
        return site_card(brand)
    share = brand.share
    return site_card(
        brand,
        headline=translate(share.card_headline, language),
        line=translate(share.card_line, language),
    )
