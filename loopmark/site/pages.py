"""The visitor's pages: the creator (home), the result, the share landing page, gallery, credits.

Pages are server-rendered Jinja; their scripts (static/js) read what they need from ``data-*``
attributes or from the JSON API, since the CSP forbids inline script and style.

Every public page carries Open Graph and Twitter tags (``SocialCard``, written by base.html):
the home, gallery, credits and error pages the site's own 1200×630 card (drawn from brand.toml
by ``brand_pages``), their titles and descriptions the brand's share copy; the share
page (/s/<key>) the render's share card. The share page makes one *best-effort* records lookup:
a key the records do not know answers 404 (with the site's card, never a broken image); a done
render gets its card (or, made before cards existed, its poster) with true sizes; when the
records are down the page still renders from the key alone (``links.media_urls``), pointing at
the card, whose size is fixed, and without the video's size (an honest omission beats a wrong
size).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlencode

from flask import (
    Blueprint,
    Response,
    abort,
    has_request_context,
    make_response,
    render_template,
    request,
    url_for,
)

from loopmark.errors import N_, LoopmarkError
from loopmark.records.renders import RenderRecord, RenderStatus
from loopmark.renderer.card import CARD_HEIGHT, CARD_WIDTH
from loopmark.service.render_service import (
    RenderBlocked,
    RenderGaveUp,
    RenderOutcome,
    has_card,
    renditions_of,
)
from loopmark.site.brand_pages import current_brand, site_card_url
from loopmark.site.page_cache import send_kept, share_pages
from loopmark.web import i18n, links
from loopmark.web.context import services
from loopmark.web.i18n import gettext

log = logging.getLogger(__name__)

# The site's page templates (base layout, error pages) come with this blueprint: the web shell
# renders 404.html and 500.html for the whole app from here.
blueprint = Blueprint("pages", __name__, template_folder="templates")

UNKNOWN_SHARE = N_("There is no GIF at this address. It may never have been made.")
# The brand's words (brand.toml) are said through the catalogues (i18n.gettext), so the demo
# brand's copy, marked here, speaks German too; another brand's own words show as written until
# its translations join the catalogues.
DEMO_BRAND_COPY = (
    N_("Hop & Co. — make a GIF"),
    N_("Pick a loop, add your words, share the GIF. Made with Hop & Co. cold brew."),
    N_("Gallery · Hop & Co."),
    N_("GIFs made with Hop & Co.: pick one of our loops and add your own words."),
    N_("Credits · Hop & Co."),
    N_("The footage, fonts and people behind the Hop & Co. GIF maker."),
    N_("A GIF made with Hop & Co."),
    N_("“{caption}” — made with Hop & Co."),
    N_("Hop & Co.: your words, our loops, one GIF."),
    N_("Hop & Co. is a fictional cold-brew brand. Sip responsibly, share kindly."),
    N_("Privacy"),
    N_("Terms of use"),
    # Drawn into the share cards (service.languages: a render's card, brand_pages: the site's).
    N_("Made with Hop & Co."),
    N_("Your words,\nour loops,\none GIF."),
)
# Big Buck Bunny's licence asks for this credit wherever a template made from it is shown.
BBB_CREDIT = "Big Buck Bunny © Blender Foundation, CC-BY 3.0"
NO_STORE = "no-store"
BBB_LICENSE_URL = "https://creativecommons.org/licenses/by/3.0/"
TAKEN_DOWN = N_("This GIF was taken down and can't be made again.")


@dataclass(frozen=True)
class ShareLink:
    """One share button: a network's name, its share URL, and the CSS modifier of its button."""

    name: str
    url: str
    kind: str


@dataclass(frozen=True)
class ShareMeta:
    """What the share page knows beyond the key: the caption and the media size, if anything.
    ``found`` is None when the records did not answer."""

    caption: str | None = None
    width: int | None = None
    height: int | None = None
    taken_down: bool = False
    found: bool | None = None
    done: bool = False
    card: bool = False
    # Which media are stored (the GIF lands before the MP4); None when the records did not say.
    renditions: dict[str, bool] | None = None
    language: str | None = None  # a predefined caption's language: the page speaks it


@dataclass(frozen=True)
class SocialCard:
    """A page's Open Graph and Twitter tags (base.html writes them); every URL absolute."""

    title: str
    description: str
    url: str
    image: str
    image_alt: str
    image_width: int | None = CARD_WIDTH
    image_height: int | None = CARD_HEIGHT
    image_type: str = "image/jpeg"
    kind: str = "website"  # og:type
    video: str | None = None
    video_width: int | None = None
    video_height: int | None = None
    twitter_site: str | None = None


def site_card(title: str, description: str, endpoint: str = "pages.home") -> SocialCard:
    """The site's own card for a page: its title and description (the brand's words, said in
    the request's language), the brand card image."""
    brand = current_brand()
    return SocialCard(
        title=gettext(title),
        description=gettext(description),
        url=links.absolute(url_for(endpoint)),
        image=links.absolute(site_card_url()),
        image_alt=gettext(brand.share.card_alt),
        twitter_site=brand.handle,
    )


@blueprint.app_context_processor
def _default_social() -> dict[str, Any]:
    """Pages that name no card (errors, the 404 of an unknown share key) get the site's."""
    if not has_request_context():
        return {"social": None}
    copy = current_brand().share
    return {"social": site_card(copy.site_title, copy.site_description)}


def share_links(share_url: str, text: str) -> list[ShareLink]:
    """Share buttons for Facebook, X, WhatsApp and email, each carrying the share page's URL."""
    return [
        ShareLink(
            "Facebook",
            "https://www.facebook.com/sharer/sharer.php?" + urlencode({"u": share_url}),
            "facebook",
        ),
        ShareLink(
            "X",
            "https://x.com/intent/post?" + urlencode({"text": text, "url": share_url}),
            "x",
        ),
        ShareLink(
            "WhatsApp",
            "https://wa.me/?" + urlencode({"text": f"{text} {share_url}"}),
            "whatsapp",
        ),
        ShareLink(
            gettext("Email"),
            # mailto wants %20 rather than + for spaces (RFC 6068), hence quote_via=quote.
            "mailto:?"
            + urlencode({"subject": text, "body": f"{text}\n{share_url}"}, quote_via=quote),
            "email",
        ),
    ]


@blueprint.get("/")
def home() -> str:
    settings = services().settings
    return render_template(
        "home.html",
        hero=_hero(),
        bbb_credit=BBB_CREDIT,
        # "Use your own clip" (partials/clip.html) when visitor uploads are on.
        uploads=settings.uploads,
        upload_max_bytes=settings.upload_max_bytes,
        upload_max_seconds=settings.upload_max_seconds,
        social=site_card(current_brand().share.site_title, current_brand().share.site_description),
    )


@blueprint.get("/r/<key>")
def result(key: str) -> Response | tuple[str, int]:
    """The creator's result page: the GIF, downloads and share buttons (or live progress)."""
    if not links.well_formed_key(key):
        abort(404)
    try:
        if key in services().blocklist:  # kept in storage: holds even if the records forgot
            raise RenderBlocked(TAKEN_DOWN)
        outcome = services().render.status(key)
    except (RenderBlocked, RenderGaveUp) as exc:
        gone = gettext(exc.message_id, **exc.params)
        return render_template("result.html", key=key, gone=gone, outcome=None), 410
    if outcome is None:
        abort(404)
    services().hits.seen(key)
    response = make_response(
        render_template("result.html", key=key, gone=None, **_result_context(key, outcome))
    )
    if outcome.status != "done":
        # The page shows live progress and reloads itself when the GIF lands (then brings the
        # MP4 in when it does): no cache may keep it.
        response.headers["Cache-Control"] = NO_STORE
    return response


@blueprint.get("/s/<key>")
def share(key: str) -> Response | tuple[str, int]:
    """The share landing page: Open Graph and Twitter tags for the render's share card."""
    if not links.well_formed_key(key):
        abort(404)
    meta = _share_meta(key)
    # The page speaks its caption's language (unless the visitor picked one with ?lang=).
    i18n.use_language(meta.language)
    if meta.taken_down:
        services().hits.seen(key)
        html = render_template("share.html", key=key, meta=meta, taken_down=True, social=None)
        return html, 410
    if meta.found is False:
        return render_template("404.html", message=gettext(UNKNOWN_SHARE)), 404
    services().hits.seen(key)  # memory only: retention's "last asked for"

    def page() -> str:
        media = links.media_urls(key)
        canonical = links.absolute(url_for("pages.share", key=key))
        title = meta.caption or gettext(current_brand().share.render_title)
        return render_template(
            "share.html",
            key=key,
            meta=meta,
            taken_down=False,
            title=title,
            description=gettext(current_brand().share.site_description),
            canonical=canonical,
            media=media,
            renditions=meta.renditions,
            social=_share_card(meta, media, title=title, canonical=canonical),
        )

    if not (meta.found and meta.done):
        # Queued or rendering (the tags show the site's card until the render's exists), or
        # the records did not answer: made afresh, and no cache may keep it.
        response = make_response(page())
        if meta.found:
            response.headers["Cache-Control"] = NO_STORE
        return response
    if set(request.args) - {i18n.QUERY_PARAMETER}:
        # Other arguments (a campaign's utm_*, or anything at all) are repeated in the page's
        # language links: made afresh, or cycling them would push every kept page out.
        return make_response(page())
    inputs = (
        key,
        repr(meta),
        i18n.current_language(),
        links.site_origin(),  # its absolute links: the request's host when no SITE_URL is set
        request.script_root,
    )  # not the query: with only ``lang`` in it, the page is the same for any value of it
    return make_response(send_kept(share_pages(), inputs, page))


def _share_card(
    meta: ShareMeta, media: dict[str, str], *, title: str, canonical: str
) -> SocialCard:
    """The render's card when it has one (or the records are down: every render made since
    cards exist has one, of a fixed size); its poster, truly sized, when made before cards; the
    site's card while it is not done yet."""
    description = gettext(current_brand().share.site_description)
    if meta.found and not meta.done:
        # The title is the caption (the visitor's words): never looked up in a catalogue.
        card = site_card(current_brand().share.site_title, description)
        return replace(card, title=title, url=canonical, kind="video.other")
    width: int | None = CARD_WIDTH
    height: int | None = CARD_HEIGHT
    image = media["card"]
    if meta.found and not meta.card:
        image, width, height = media["poster"], meta.width, meta.height
    return SocialCard(
        title=title,
        description=description,
        url=canonical,
        image=links.absolute(image),
        image_alt=meta.caption or title,
        image_width=width,
        image_height=height,
        kind="video.other",
        video=links.absolute(media["mp4"]),
        video_width=meta.width,
        video_height=meta.height,
        twitter_site=current_brand().handle,
    )


@blueprint.get("/gallery")
def gallery() -> str:
    copy = current_brand().share
    return render_template(
        "gallery.html",
        social=site_card(copy.gallery_title, copy.gallery_description, "pages.gallery"),
    )


@blueprint.get("/credits")
def credits() -> str:
    try:
        templates = services().templates.all()
    except LoopmarkError as exc:
        log.warning("credits: template catalog unavailable: %s", exc)
        templates = []
    return render_template(
        "credits.html",
        templates=templates,
        bbb_credit=BBB_CREDIT,
        bbb_license_url=BBB_LICENSE_URL,
        social=site_card(
            current_brand().share.credits_title,
            current_brand().share.credits_description,
            "pages.credits",
        ),
    )


def _hero() -> dict[str, str] | None:
    """The first template's preview loop and poster for the home page's hero (MP4, not a GIF)."""
    try:
        templates = services().templates.all()
    except LoopmarkError as exc:
        log.warning("home: template catalog unavailable: %s", exc)
        return None
    catalog = services().templates
    ready = [template for template in templates if not catalog.warming(template)]
    if not ready:  # none ready yet (the server just started): the picker says so
        return None
    first = ready[0]
    urls = links.template_urls(first)  # versioned, so immutable
    name = first.name_for(i18n.current_language())
    return {"video": urls["preview"], "poster": urls["poster"], "name": name}


def _result_context(key: str, outcome: RenderOutcome) -> dict[str, Any]:
    share_url = links.absolute(url_for("pages.share", key=key))
    caption = outcome.caption or ""
    share = current_brand().share
    # The share text in the page's language: {caption} replaced after the lookup.
    text = gettext(share.share_text).replace("{caption}", caption) if caption else ""
    text = text or gettext(share.render_title)
    return {
        "outcome": outcome,
        "caption": caption,
        "media": links.media_urls(key),
        "renditions": outcome.renditions,
        "width": outcome.media.get("width"),
        "height": outcome.media.get("height"),
        "share_url": share_url,
        "share_text": text,
        "share_links": share_links(share_url, text),
        "download_name": f"{current_brand().slug}-{key}",
    }


def _share_meta(key: str) -> ShareMeta:
    """Caption and size from the records when they answer; nothing (never an error) otherwise.
    A key in the blocklist kept in storage is taken down whatever the records say."""
    if key in services().blocklist:
        return ShareMeta(taken_down=True)
    try:
        record = services().render.record(key)
    except LoopmarkError as exc:
        log.warning("share %s: records unavailable, generic tags: %s", key, exc)
        return ShareMeta()
    if record is None:
        return ShareMeta(found=False)
    return _meta_from_record(record)


def _meta_from_record(record: RenderRecord) -> ShareMeta:
    if record.status == RenderStatus.BLOCKED:
        return ShareMeta(taken_down=True)
    media = record.media or {}
    width, height = media.get("width"), media.get("height")
    sized = isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0
    done = record.status == RenderStatus.DONE
    return ShareMeta(
        caption=record.caption or None,
        width=width if sized else None,
        height=height if sized else None,
        found=True,
        done=done,
        card=done and has_card(media),
        renditions=renditions_of(record.media),
        language=media.get("lang") if isinstance(media.get("lang"), str) else None,
    )
