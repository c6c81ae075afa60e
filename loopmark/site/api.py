"""The JSON API: templates, caption checks, and renders (request one, then poll its key).

Bodies are small JSON objects (``MAX_CONTENT_LENGTH``); every malformed request is a 4xx with
``{"error": {"code", "message"}}`` before anything expensive runs, and the caption policy runs
before a render is queued. ``POST /api/renders`` may hold the request for up to
``RENDER_WAIT_SECONDS`` so a quick render answers in one round trip, but only while a hold slot
is free: the rest answer 202 at once, so waiting requests cannot take every server thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import regex
from flask import Blueprint, Flask, current_app, g, jsonify, request, url_for
from flask_babel import gettext
from werkzeug.exceptions import BadRequest, UnsupportedMediaType
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from loopmark.errors import N_, BadInput, LoopmarkError
from loopmark.package_data import FONTS_DIR, WEB_FONTS_DIR
from loopmark.renderer.colours import format_hex_colour
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.templates import Template
from loopmark.service.render_service import RenderOutcome, has_card, has_thumbnail
from loopmark.site.page_cache import done_outcomes
from loopmark.web import assets, limits, links
from loopmark.web.context import services
from loopmark.web.errors import error_response

log = logging.getLogger(__name__)

blueprint = Blueprint("api", __name__, url_prefix="/api")

TEMPLATES_CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=3600"
DONE_CACHE_CONTROL = "public, max-age=60"
NO_STORE = "no-store"
HOLD_SLOTS_EXTENSION = "loopmark.hold_slots"
MAX_TEMPLATE_ID_CHARS = 40
_GRAPHEME = regex.compile(r"\X")


class InvalidRequest(BadInput):
    """A request body with a missing field or a field of the wrong type."""

    code = "invalid_request"


class InvalidJson(BadInput):
    """A request body that does not parse as JSON."""

    code = "invalid_json"
    http_status = 400


# -- templates ---------------------------------------------------------------------------------


@blueprint.get("/templates")
def list_templates() -> Response:
    """Enabled templates, with what the page's live preview needs to approximate the layout."""
    catalog = services().templates
    items = []
    warming = False
    for template in catalog.all():
        if catalog.warming(template):
            # The server's start is preparing it: listed as getting ready, never waited for.
            warming = True
            items.append(warming_template_json(template))
            continue
        try:
            prepared = catalog.prepared(template)
        except LoopmarkError as exc:
            # One broken template must not take the whole list down.
            log.error("template %s cannot be prepared: %s", template.id, exc.reason)
            continue
        items.append(template_json(prepared))
    response = jsonify(items)
    # While templates get ready the page asks again: nobody may keep the partial list.
    response.headers["Cache-Control"] = NO_STORE if warming else TEMPLATES_CACHE_CONTROL
    response.add_etag()
    return response.make_conditional(request)


def template_json(prepared: PreparedTemplate) -> dict[str, Any]:
    template = prepared.template
    style = template.style
    box = prepared.box
    urls = links.template_urls(template)
    return {
        "id": template.id,
        "name": template.name,
        # The page shows its language's name where the template has one (like the captions).
        "names_by_language": dict(template.names),
        "ready": True,
        "width": prepared.width,
        "height": prepared.height,
        "fps": prepared.fps,
        "seconds": round(prepared.seconds, 3),
        # The default language's captions; the page picks its own language's from the next.
        "captions": list(template.captions_for(None)),
        "captions_by_language": {
            lang: list(captions) for lang, captions in template.caption_sets.items()
        },
        "caption_mode": template.caption_mode,
        "preview_url": urls["preview"],
        "poster_url": urls["poster"],
        "credit": template.credit,
        "text": {
            "box": [box.x, box.y, box.w, box.h],
            "font_url": _font_url(template),
            "fill": format_hex_colour(style.fill),
            "stroke": format_hex_colour(style.stroke),
            "stroke_width": style.stroke_width,
            "align": style.align,
            "max_lines": style.max_lines,
            "max_size": style.max_size,
            "min_size": style.min_size,
        },
    }


def warming_template_json(template: Template) -> dict[str, Any]:
    """A template the server's start is still preparing: what the picker shows meanwhile
    (``ready`` false; sizes, preview and layout come once it is ready)."""
    return {
        "id": template.id,
        "name": template.name,
        "names_by_language": dict(template.names),
        "ready": False,
        "captions": list(template.captions),
        "caption_mode": template.caption_mode,
        "credit": template.credit,
    }


def _font_url(template: Template) -> str | None:
    # Only fonts from static/fonts are served; a template's own font is not public.
    # A browser-safe web copy (static/css/fonts/<name>.woff2) wins where one exists: Chromium
    # refuses some desktop fonts outright (see static/css/fonts/README.md).
    font = template.style.font
    if font.parent.resolve() != FONTS_DIR.resolve():
        return None
    if (WEB_FONTS_DIR / f"{font.stem}.woff2").is_file():
        return assets.asset_url(f"css/fonts/{font.stem}.woff2")
    return assets.asset_url(f"fonts/{font.name}")


# -- captions ----------------------------------------------------------------------------------


@blueprint.post("/captions/check")
def check_caption() -> Response:
    """Whether a caption is accepted for a template: its normalised form, or 422 and why."""
    template_id, caption = _render_request()
    normalised = services().render.check_caption(template_id, caption)
    response = jsonify(
        {"ok": True, "caption": normalised, "length": len(_GRAPHEME.findall(normalised))}
    )
    response.headers["Cache-Control"] = NO_STORE
    return response


# -- visitors ---------------------------------------------------------------------------------


@blueprint.get("/visitor")
def visitor_token() -> Response:
    """A visitor token for the page's API calls (the X-Loopmark-Visitor header): limits count
    per visitor, not per shared address. Asked for by script, so cached pages stay shared."""
    response = jsonify(
        {"token": limits.issue_visitor_token(), "expires_in": limits.VISITOR_TOKEN_SECONDS}
    )
    response.headers["Cache-Control"] = NO_STORE
    return response


# -- renders -----------------------------------------------------------------------------------


@blueprint.post("/renders")
def create_render() -> Response:
    """Render a caption (or find it rendered): 200 when done, else 202 with progress. A body
    naming an ``upload`` renders a trim of a visitor's clip instead (site.uploads)."""
    body = json_object()
    if "upload" in body and "template" not in body:
        if not services().settings.uploads:
            return error_response(404, "uploads_off", gettext("This site does not take uploads."))
        from loopmark.site.uploads import create_upload_render  # it imports this module

        return create_upload_render(body)
    template_id, caption = _render_request(body)
    service = services().render
    slots = hold_slots(current_app)
    holding = slots.acquire(blocking=False)
    try:
        wait_s = float(current_app.config["RENDER_WAIT_SECONDS"]) if holding else 0.0
        # The render limits count only renders this request queues (RenderRefused: 429/503
        # with Retry-After past a limit); cache hits are never limited.
        outcome = service.request(template_id, caption, wait_s=wait_s, admit=limits.admit_render)
    finally:
        if holding:
            slots.release()
    return outcome_response(outcome, cacheable=False)


@blueprint.get("/renders/<key>")
def render_status(key: str) -> Response:
    """The state of a render: 200 when done, 202 while queued or rendering, 404 if unknown."""
    if not links.well_formed_key(key):
        return error_response(400, "bad_key", gettext("That is not a render key."))
    g.render_key = key
    outcome = services().render.status(key)
    if outcome is None:
        return error_response(404, "unknown_render", gettext("There is no render with this key."))
    return outcome_response(outcome, cacheable=True)


def outcome_response(outcome: RenderOutcome, *, cacheable: bool) -> Response:
    """The JSON of an outcome; a finished render's GET may be cached briefly (its media are
    immutable, and a short lifetime lets a takedown take effect)."""
    g.render_key = outcome.key
    if outcome.status == "done":
        # The same JSON for the same record: made once (a crowd's cache hits ask for it).
        inputs = (repr(outcome), links.site_origin(), request.script_root)
        text = done_outcomes().get_or_render(inputs, lambda: _json_text(outcome_json(outcome)))
        response = current_app.response_class(text, mimetype="application/json")
        response.status_code = 200
        response.headers["Cache-Control"] = DONE_CACHE_CONTROL if cacheable else NO_STORE
    else:
        response = jsonify(outcome_json(outcome))
        response.status_code = 202
        response.headers["Cache-Control"] = NO_STORE
        response.headers["Location"] = url_for("api.render_status", key=outcome.key)
    return response


def _json_text(body: dict[str, Any]) -> str:
    """``body`` as ``jsonify`` writes it (its text, not a response)."""
    return jsonify(body).get_data(as_text=True)


def outcome_json(outcome: RenderOutcome) -> dict[str, Any]:
    key = outcome.key
    body: dict[str, Any] = {
        "key": key,
        "status": outcome.status,
        "result_url": _page_url("pages.result", "r", key),
        # Which media are stored: the GIF lands first (status still "rendering"), then the
        # poster, the MP4 and the share card; each URL is in the body once its file is.
        "renditions": outcome.renditions,
    }
    if outcome.status == "done":
        media = links.media_urls(key)
        body.update(
            {
                "gif_url": media["gif"],
                "mp4_url": media["mp4"],
                "poster_url": media["poster"],
                # The 1200×630 share card; null for renders made before cards existed.
                "card_url": media["card"] if has_card(outcome.media) else None,
                # A 320 px JPEG of the first frame; null for renders made before thumbnails.
                "thumbnail_url": media["thumbnail"] if has_thumbnail(outcome.media) else None,
                "share_url": links.absolute(_page_url("pages.share", "s", key)),
                "width": outcome.media.get("width"),
                "height": outcome.media.get("height"),
                "caption": outcome.caption,
                "template": outcome.template_id,
                # What the GIF size budget did (null: none applied): the GIF's frames, size and
                # bytes, and whether it fits (README, "GIF size budgets").
                "budget": outcome.media.get("budget"),
            }
        )
    else:
        if any(outcome.renditions.values()):
            # Under way, its first renditions stored (the GIF lands before the MP4): their
            # URLs now, the others' once they land.
            media = links.media_urls(key)
            body.update(
                {
                    f"{kind}_url": media[kind]
                    for kind, stored in outcome.renditions.items()
                    if stored
                }
            )
            body["width"] = outcome.media.get("width")
            body["height"] = outcome.media.get("height")
            body["budget"] = outcome.media.get("budget")
        body.update(
            {
                "position": outcome.position,
                "progress": round(outcome.progress, 3),
                "eta_seconds": (
                    None if outcome.eta_seconds is None else round(outcome.eta_seconds, 1)
                ),
            }
        )
    return body


def _page_url(endpoint: str, prefix: str, key: str) -> str:
    try:
        return url_for(endpoint, key=key)
    except BuildError:
        # An app without the pages blueprint still answers with the contract's paths.
        return f"/{prefix}/{key}"


def hold_slots(app: Flask) -> threading.BoundedSemaphore:
    """The app's hold slots (RENDER_HOLD_SLOTS), made on first use."""
    slots: threading.BoundedSemaphore | None = app.extensions.get(HOLD_SLOTS_EXTENSION)
    if slots is None:
        slots = app.extensions.setdefault(
            HOLD_SLOTS_EXTENSION, threading.BoundedSemaphore(app.config["RENDER_HOLD_SLOTS"])
        )
    return slots


# -- request bodies ----------------------------------------------------------------------------


def _render_request(body: dict[str, Any] | None = None) -> tuple[str, str]:
    """``template`` and ``caption`` from a JSON object body; a 4xx for anything else."""
    if body is None:
        body = json_object()
    template_id = _string_field(body, "template")
    caption = _string_field(body, "caption")
    if not template_id or len(template_id) > MAX_TEMPLATE_ID_CHARS:
        raise InvalidRequest(N_("Field 'template' must name a template."))
    return template_id, caption


def json_object() -> dict[str, Any]:
    """The request's JSON object body; a 4xx for anything else."""
    if not request.is_json:
        raise UnsupportedMediaType(gettext("Send the request body as application/json."))
    try:
        body = request.get_json()
    except (BadRequest, RecursionError):  # RecursionError: JSON nested thousands deep
        raise InvalidJson(N_("The request body is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise InvalidRequest(N_("The request body must be a JSON object."))
    return body


def _string_field(body: dict[str, Any], name: str) -> str:
    if name not in body:
        raise InvalidRequest(N_("Field %(name)r is missing."), params={"name": name})
    value = body[name]
    if not isinstance(value, str):
        raise InvalidRequest(N_("Field %(name)r must be a string."), params={"name": name})
    return value
