"""Languages: which one a request is answered in, and what a page needs to speak it.

Flask-Babel translates templates (``{{ _('…') }}``), Python messages (``gettext``) and, through a
JSON block the page carries (``js_strings``), the scripts. The catalogues live in
``loopmark/translations`` (``make translations`` extracts, updates and compiles them; the compiled
``.mo`` files are committed, so a fresh clone, the wheel and the images carry them).

A request's language, first that applies:

1. the page's own (``use_language``): a share page speaks its render's caption language;
2. ``?lang=xx`` in the URL: the visible switch; remembered in the ``loopmark_lang`` cookie;
3. that cookie;
4. ``Accept-Language``;
5. English.

Caching: a response whose words depended on the request's cookie or ``Accept-Language`` says
``Vary: Accept-Language, Cookie`` (and ``Content-Language``), so no cache serves a German page to
an English visitor; the CDN's page cache keys on the same two (deploy/loopmark_stack/cdn.py). A
``?lang=`` URL is a cache key of its own; the answer that sets the cookie is private.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from babel import Locale
from babel.support import NullTranslations, Translations
from flask import Flask, Response, current_app, g, has_request_context, request
from flask_babel import Babel, get_locale, get_translations, refresh
from jinja2 import pass_context
from jinja2.runtime import Context
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header, parse_cookie

from loopmark.package_data import TRANSLATIONS_DIR
from loopmark.web import links as web_links

DEFAULT_LANGUAGE = "en"
# The languages the site ships complete, in the order the switch lists them.
LANGUAGES = ("en", "de")
QUERY_PARAMETER = "lang"
COOKIE_NAME = "loopmark_lang"
COOKIE_MAX_AGE_SECONDS = 365 * 24 * 3600
VARY_HEADERS = ("Accept-Language", "Cookie")

_PAGE_LANGUAGE = "loopmark_page_language"  # g: the page's own language (use_language)
_NEGOTIATED = "loopmark_language_negotiated"  # g: the choice read the cookie or the header
_REMEMBER = "loopmark_language_remember"  # g: a ?lang= choice to keep in the cookie
_LINKS = "loopmark_language_links"  # g: this request's switch
_TRANSLATIONS = "loopmark_translations"  # g: this request's catalogue
_JS_CACHE = "loopmark.js_strings"  # app.extensions: the scripts' strings as JSON, by language


@dataclass(frozen=True)
class LanguageLink:
    """One entry of the language switch: the language's own name and the current page in it."""

    code: str
    name: str
    url: str
    current: bool


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    Babel(app, locale_selector=_selected_locale)
    app.context_processor(_page_context)
    app.after_request(_language_headers)


def supported(code: str | None) -> str | None:
    """``code`` (any case, a region allowed: ``de-AT``) as a language the site ships, or None."""
    if not code:
        return None
    base = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return base if base in LANGUAGES else None


def _selected_locale() -> Locale:
    """``select_language``'s choice as the Locale Flask-Babel would parse from it each time."""
    return _locale(select_language())


@functools.lru_cache(maxsize=64)
def _locale(code: str) -> Locale:
    # One per language the site ships (select_language picks only those): parsed once.
    return Locale.parse(code)


def select_language() -> str:
    """The language of this request (see the module's docstring for the order)."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    page = g.get(_PAGE_LANGUAGE)
    if page:
        return str(page)
    asked = request.args.get(QUERY_PARAMETER)
    chosen = supported(asked)
    if chosen:
        if supported(request.cookies.get(COOKIE_NAME)) != chosen:
            g.setdefault(_REMEMBER, chosen)
        return chosen
    g.setdefault(_NEGOTIATED, True)
    remembered = supported(request.cookies.get(COOKIE_NAME))
    if remembered:
        return remembered
    return _preferred(request.accept_languages)


def _preferred(accepted: LanguageAccept) -> str:
    """The visitor's most preferred language we ship, by quality then order ("en-GB, de;q=0.5"
    is English: werkzeug's best_match would prefer an exact "de" to a regional "en")."""
    for asked_language, quality in accepted:
        found = supported(asked_language)
        if found and quality > 0:
            return found
    return DEFAULT_LANGUAGE


def language_outside_app(*, query: str = "", cookie: str = "", accept_language: str = "") -> str:
    """The language :func:`select_language` would pick from a request's query string, Cookie
    and Accept-Language headers, for an answer given before the request reaches the app (the
    server's own: loopmark.web.server). No page has a language of its own there."""
    asked = parse_qs(query).get(QUERY_PARAMETER)
    chosen = supported(asked[0] if asked else None)
    remembered = supported(parse_cookie(cookie).get(COOKIE_NAME)) if cookie else None
    return chosen or remembered or _preferred(parse_accept_header(accept_language, LanguageAccept))


@functools.lru_cache(maxsize=len(LANGUAGES))
def catalogue(code: str) -> Translations | NullTranslations:
    """``code``'s catalogue, from the files Flask-Babel reads, for text made without an app
    context (the server's own answers); English has none (NullTranslations)."""
    return Translations.load(str(TRANSLATIONS_DIR), [code])


def use_language(code: str | None) -> bool:
    """Answer this request in ``code`` (a page's own language), unless the visitor asked for one
    in the URL. True when the language changed to ``code``."""
    chosen = supported(code)
    if not chosen or supported(request.args.get(QUERY_PARAMETER)):
        return False
    g.setdefault(_NEGOTIATED, True)  # the other branch may have been taken before
    setattr(g, _PAGE_LANGUAGE, chosen)
    g.pop(_TRANSLATIONS, None)
    g.pop(_LINKS, None)
    refresh()
    return True


def gettext(message: str, **variables: object) -> str:
    """``message`` in this request's language, ``%(name)s`` filled from ``variables`` (as
    Flask-Babel's gettext, with the request's catalogue looked up once per request)."""
    found = _translations().gettext(message)
    return found % variables if variables else found


def _translations() -> Translations | NullTranslations:
    if not has_request_context():
        return get_translations()
    cached: Translations | NullTranslations | None = g.get(_TRANSLATIONS)
    if cached is None:
        cached = get_translations()
        setattr(g, _TRANSLATIONS, cached)
    return cached


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT_LANGUAGE


@functools.lru_cache(maxsize=64)
def text_direction(code: str) -> str:
    """``rtl`` or ``ltr``, from the locale's data (Arabic, Hebrew, … are right to left)."""
    return "rtl" if Locale.parse(code).text_direction == "rtl" else "ltr"


@functools.lru_cache(maxsize=64)
def language_name(code: str) -> str:
    """A language's name in itself, capitalised for a menu: "Deutsch", "English"."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def language_links() -> list[LanguageLink]:
    """The switch: the current page (its path and query) in each language, in its own name
    (worked out once per request: the header and the alternates both use it)."""
    cached: list[LanguageLink] | None = g.get(_LINKS)
    if cached is not None:
        return cached
    current = current_language()
    path = request.script_root + request.path
    links = []
    for code in LANGUAGES:
        query = urlencode({**dict(request.args.items()), QUERY_PARAMETER: code})
        links.append(LanguageLink(code, language_name(code), f"{path}?{query}", code == current))
    setattr(g, _LINKS, links)
    return links


def language_alternates() -> list[tuple[str, str]]:
    """``<link rel=alternate hreflang>`` targets: every language's version of this page and an
    ``x-default`` (the page without ``lang``, which follows Accept-Language), as absolute URLs
    (search engines ignore relative ones)."""
    path = request.script_root + request.path
    rest = urlencode([(k, v) for k, v in request.args.items(multi=True) if k != QUERY_PARAMETER])
    default = f"{path}?{rest}" if rest else path
    alternates = [(link.code, web_links.absolute(link.url)) for link in language_links()]
    return [*alternates, ("x-default", web_links.absolute(default))]


def _page_context() -> dict[str, Any]:
    """What every template gets: the page's language and direction, the switch, the scripts'
    strings, and gettext bound to this request's catalogue (Flask-Babel's own looks the request
    up again on every call; the pages say dozens of strings)."""
    if not has_request_context():
        return {}
    code = current_language()
    translations = _translations()
    gettext_ = _new_style(translations.gettext)
    return {
        "page_lang": code,
        "page_dir": text_direction(code),
        "language_links": language_links,
        "language_alternates": language_alternates,
        "js_strings": js_strings_json,
        "_": gettext_,
        "gettext": gettext_,
        "ngettext": _new_style_plural(translations.ngettext),
    }


def _new_style(lookup: Callable[[str], str]) -> Callable[..., str]:
    """Jinja's new-style gettext over one catalogue: variables are escaped, then filled in."""

    @pass_context
    def gettext_(context: Context, message: str, **variables: Any) -> str:
        found = lookup(message)
        text = Markup(found) if context.eval_ctx.autoescape else found
        return text % variables  # Markup under autoescape: the translation is trusted

    return gettext_


def _new_style_plural(lookup: Callable[[str, str, int], str]) -> Callable[..., str]:
    @pass_context
    def ngettext_(context: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        found = lookup(singular, plural, num)
        text = Markup(found) if context.eval_ctx.autoescape else found
        return text % variables  # Markup under autoescape: the translation is trusted

    return ngettext_


def _language_headers(response: Response) -> Response:
    """Content-Language on localised answers; Vary when the cookie or header chose it; the
    cookie set when the visitor picked a language in the URL."""
    if not (g.get(_NEGOTIATED) or g.get(_REMEMBER) or g.get(_PAGE_LANGUAGE)):
        return response  # nothing in this answer asked for a language
    if response.mimetype == "text/html" or response.is_json:
        response.headers["Content-Language"] = current_language()
    if g.get(_NEGOTIATED):
        response.vary.update(VARY_HEADERS)
    remember = g.get(_REMEMBER)
    if remember:
        response.set_cookie(
            COOKIE_NAME,
            remember,
            max_age=COOKIE_MAX_AGE_SECONDS,
            secure=request.is_secure,
            httponly=True,
            samesite="Lax",
        )
    return response


def js_strings_json() -> Markup:
    """js_strings as JSON safe inside a <script> data block, made once per language."""
    cache: dict[str, Markup] = current_app.extensions.setdefault(_JS_CACHE, {})
    code = current_language()
    found = cache.get(code)
    if found is None:
        found = cache[code] = htmlsafe_json_dumps(js_strings())
    return found


def js_strings() -> Mapping[str, Any]:
    """Every string the public scripts show, in the page's language (``Hop.t`` reads them from
    the page's JSON block). ``%(name)s`` placeholders are filled in by the script; a pair
    ``{"one": …, "other": …}`` is chosen with the language's plural rules."""
    return {
        "picker.free": gettext("Your words"),
        "picker.presets": gettext("Pick a line"),
        "picker.empty": gettext("No loops yet: come back soon!"),
        "picker.failed": gettext("We couldn't load the loops. Please reload the page."),
        "picker.warming": gettext("Getting ready…"),
        "preview.label": gettext("%(name)s preview"),
        "presets.suggestions": gettext("Suggestions"),
        "presets.pick": gettext("Pick a caption"),
        "caption.too_wide": gettext("That's a lot of words: it may not fit the loop."),
        "caption.try_another": gettext("Please try another caption."),
        "caption.write_or_pick": gettext("Write a caption or pick a suggestion."),
        "caption.pick_one": gettext("Pick one of the captions."),
        "caption.too_long": gettext("That caption is too long: %(max)s characters at most."),
        "create.button": gettext("Create my GIF"),
        "create.busy": gettext("Creating…"),
        "create.oven_busy": gettext("Lots of GIFs in the oven right now."),
        "create.retry_in": gettext("Trying again in %(seconds)s s…"),
        "create.waiting": gettext("Waiting for a place in the queue…"),
        "create.failed": gettext("Something went wrong. Please try again."),
        "create.offline": gettext(
            "We couldn't reach the oven. Check your connection and try again."
        ),
        "progress.done": gettext("Done! Opening your GIF…"),
        "progress.ahead": _plural(
            "In the queue: %(n)s GIF ahead of you", "In the queue: %(n)s GIFs ahead of you"
        ),
        "progress.next": gettext("In the queue: you're next"),
        "progress.rendering": gettext("Rendering your GIF… %(percent)s%%"),
        "progress.eta": _plural("About %(n)s second left", "About %(n)s seconds left"),
        "progress.lost": gettext("We lost track of this GIF. Please make it again."),
        "progress.failed": gettext("Something went wrong making your GIF."),
        "progress.offline": gettext("Connection lost, retrying…"),
        "progress.busy": gettext("We're very busy right now."),
        "progress.check_in": gettext("Checking again in %(seconds)s s…"),
        "media.failed": gettext(
            "We couldn't load this GIF. It may have been removed, or the connection dropped."
        ),
        "media.loading": gettext("Loading the loop…"),
        "share.copied": gettext("Link copied!"),
        "share.copy_manually": gettext("Select the link below and copy it."),
        "share.failed": gettext("Sharing didn't work here: try a button below."),
        "gallery.failed": gettext("The gallery could not be loaded just now."),
        "clip.too_big": gettext("That video is too big: %(max)s MB at most. Try a shorter clip."),
        "clip.not_video": gettext("That file isn't a video. Choose an MP4, MOV or WebM clip."),
        "clip.empty": gettext("That file is empty."),
        "clip.no_preview": gettext(
            "Your browser can't show this video, but we may still be able to use it."
        ),
        "clip.summary": gettext("From %(start)s s to %(end)s s (%(length)s s)"),
        "clip.summary_unknown": gettext("From %(start)s s, %(length)s s long"),
        "clip.uploading": gettext("Uploading your clip… %(percent)s%%"),
        "clip.uploaded": gettext("Clip uploaded. Making your GIF…"),
        "clip.upload_failed": gettext("The upload didn't go through. Please try again."),
    }


def _plural(singular: str, plural: str) -> dict[str, str]:
    """Both forms of a message whose number the script fills in (English and German: one and
    other; the catalogue's forms for 1 and 2), unformatted."""
    translations = _translations()
    return {
        "one": translations.ngettext(singular, plural, 1),
        "other": translations.ngettext(singular, plural, 2),
    }
