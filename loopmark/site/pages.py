"""The visitor's pages: the creator (home), the result, the share landing page, gallery, credits.

Pages are server-rendered Jinja; their scripts (static/js) read what they need from ``data-*``
attributes or from the JSON API, since the CSP forbids inline script and style.

The share page (/s/<key>) renders for any well-formed key: the key alone gives its media URLs
(``links.media_urls``). It then makes one *best-effort* records lookup, only to enrich the
Open Graph tags with the caption (og:title) and the real media size (og:image:width/height,
og:video:width/height). When the records are down, or do not know the key, the page still
renders with a generic title and without the sizes (an honest omission beats a wrong size);
the media load lazily in the page and a missing GIF shows a message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, abort, make_response, render_template, url_for

from loopmark.errors import LoopmarkError
from loopmark.records.renders import RenderRecord, RenderStatus
from loopmark.service.render_service import RenderBlocked, RenderGaveUp, RenderOutcome
from loopmark.web import links
from loopmark.web.context import services

log = logging.getLogger(__name__)

# The site's page templates (base layout, error pages) come with this blueprint: the web shell
# renders 404.html and 500.html for the whole app from here.
blueprint = Blueprint("pages", __name__, template_folder="templates")

BRAND = "Hop & Co."
GENERIC_TITLE = "A GIF made with Hop & Co."
DESCRIPTION = "Pick a loop, add your words, share the GIF. Made with Hop & Co. cold brew."
# Big Buck Bunny's licence asks for this credit wherever a template made from it is shown.
BBB_CREDIT = "Big Buck Bunny © Blender Foundation, CC-BY 3.0"
NO_STORE = "no-store"
BBB_LICENSE_URL = "https://creativecommons.org/licenses/by/3.0/"
TAKEN_DOWN = "This GIF was taken down and can't be made again."


@dataclass(frozen=True)
class ShareLink:
    """One share button: a network's name, its share URL, and the CSS modifier of its button."""

    name: str
    url: str
    kind: str


@dataclass(frozen=True)
class ShareMeta:
    """What the share page knows beyond the key: the caption and the media size, if anything."""

    caption: str | None = None
    width: int | None = None
    height: int | None = None
    taken_down: bool = False


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
            "Email",
            # mailto wants %20 rather than + for spaces (RFC 6068), hence quote_via=quote.
            "mailto:?"
            + urlencode({"subject": text, "body": f"{text}\n{share_url}"}, quote_via=quote),
            "email",
        ),
    ]


@blueprint.get("/")
def home() -> str:
    return render_template("home.html", hero=_hero(), bbb_credit=BBB_CREDIT)


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
        return render_template("result.html", key=key, gone=exc.reason, outcome=None), 410
    if outcome is None:
        abort(404)
    services().hits.seen(key)
    response = make_response(
        render_template("result.html", key=key, gone=None, **_result_context(key, outcome))
    )
    if outcome.status != "done":
        # The page shows live progress and reloads itself when done: no cache may keep it.
        response.headers["Cache-Control"] = NO_STORE
    return response


@blueprint.get("/s/<key>")
def share(key: str) -> tuple[str, int] | str:
    """The share landing page: Open Graph and Twitter tags for any well-formed key."""
    if not links.well_formed_key(key):
        abort(404)
    meta = _share_meta(key)
    services().hits.seen(key)  # memory only: retention's "last asked for"
    if meta.taken_down:
        return render_template("share.html", key=key, meta=meta, taken_down=True), 410
    media = links.media_urls(key)
    canonical = links.absolute(url_for("pages.share", key=key))
    return render_template(
        "share.html",
        key=key,
        meta=meta,
        taken_down=False,
        title=meta.caption or GENERIC_TITLE,
        description=DESCRIPTION,
        canonical=canonical,
        media=media,
        og_image=links.absolute(media["poster"]),
        og_video=links.absolute(media["mp4"]),
    )


@blueprint.get("/gallery")
def gallery() -> str:
    return render_template("gallery.html")


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
    )


def _hero() -> dict[str, str] | None:
    """The first template's preview loop and poster for the home page's hero (MP4, not a GIF)."""
    try:
        templates = services().templates.all()
    except LoopmarkError as exc:
        log.warning("home: template catalog unavailable: %s", exc)
        return None
    if not templates:
        return None
    first = templates[0]
    urls = links.template_urls(first)  # versioned, so immutable
    return {"video": urls["preview"], "poster": urls["poster"], "name": first.name}


def _result_context(key: str, outcome: RenderOutcome) -> dict[str, Any]:
    share_url = links.absolute(url_for("pages.share", key=key))
    caption = outcome.caption or ""
    text = f"“{caption}” — made with {BRAND}" if caption else GENERIC_TITLE
    return {
        "outcome": outcome,
        "caption": caption,
        "media": links.media_urls(key),
        "width": outcome.media.get("width"),
        "height": outcome.media.get("height"),
        "share_url": share_url,
        "share_text": text,
        "share_links": share_links(share_url, text),
        "download_name": f"{services().settings.brand_slug}-{key}",
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
        return ShareMeta()
    return _meta_from_record(record)


def _meta_from_record(record: RenderRecord) -> ShareMeta:
    if record.status == RenderStatus.BLOCKED:
        return ShareMeta(taken_down=True)
    media = record.media or {}
    width, height = media.get("width"), media.get("height")
    sized = isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0
    return ShareMeta(
        caption=record.caption or None,
        width=width if sized else None,
        height=height if sized else None,
    )
