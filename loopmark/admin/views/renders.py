"""Renders: the recent ones (searchable by caption and template, paged by time), one render's
page, and the take-down (blocks the key for ever, deletes its media, purges the CDN, and takes it
out of the gallery)."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # not in types-WTForms 3.2

from loopmark.admin import blueprint
from loopmark.admin.forms import (
    KeyForm,
    MoveForm,
    RenderSearchForm,
    TakeDownForm,
    TakeDownLinkForm,
)
from loopmark.admin.views import back, flash_form_errors
from loopmark.admin.views.templates import known_template_ids
from loopmark.errors import BadInput
from loopmark.records.renders import RenderRecord, RenderStatus
from loopmark.web import links
from loopmark.web.context import services

log = logging.getLogger(__name__)

PAGE_SIZE = 25
# A key anywhere in a pasted link: /r/<key>, /s/<key>, /m/<key>.gif or a media URL.
_KEY_IN_TEXT = re.compile(r"(?<![a-z2-7])([a-z2-7]{24})(?![a-z2-7])")


@dataclass(frozen=True)
class RenderRow:
    record: RenderRecord
    poster_url: str
    in_gallery: bool

    @property
    def when(self) -> str:
        return format_time(self.record.updated_at)


def format_time(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _before_arg() -> float | None:
    raw = request.args.get("before", "")
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


@blueprint.get("/")
def renders() -> str:
    form = RenderSearchForm(request.args)
    template_ids = known_template_ids()
    form.template.choices = [SelectChoice("", "All templates")] + [
        SelectChoice(tid) for tid in template_ids
    ]
    query = (form.q.data or "").strip()[:80] or None
    template_id = request.args.get("template") or None
    if template_id not in template_ids:
        template_id = None
    before = _before_arg()
    found = services().render.recent(
        limit=PAGE_SIZE + 1, before=before, template_id=template_id, query=query
    )
    page, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
    curated = {entry.key for entry in services().gallery.entries()}
    rows = [
        RenderRow(record, links.media_urls(record.key)["poster"], record.key in curated)
        for record in page
    ]
    older_url = None
    if more and page:
        older_url = url_for(
            "admin.renders",
            q=query or None,
            template=template_id,
            before=repr(page[-1].updated_at),
        )
    return render_template(
        "admin/renders.html",
        form=form,
        rows=rows,
        older_url=older_url,
        paged=before is not None,
        searching=bool(query or template_id),
        key_form=KeyForm(),
        takedown_form=TakeDownLinkForm(),
    )


@blueprint.get("/renders/<key>")
def render_detail(key: str) -> str:
    if not links.well_formed_key(key):
        abort(404)
    record = services().render.record(key)
    if record is None:
        abort(404)
    entries = services().gallery.entries()
    position = next((e.position for e in entries if e.key == key), None)
    urls = links.media_urls(key) if record.status == RenderStatus.DONE else {}
    return render_template(
        "admin/render.html",
        record=record,
        urls=urls,
        when=format_time(record.updated_at),
        created=format_time(record.created_at),
        position=position,
        key_form=KeyForm(key=key, back=request.path),
        move_form=MoveForm(),
        takedown_form=TakeDownForm(),
    )


@blueprint.post("/renders/<key>/take-down")
def take_down(key: str) -> Response:
    if not links.well_formed_key(key):
        abort(404)
    form = TakeDownForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return back(None, "admin.render_detail", key=key)
    _take_down(key, form.reason.data or "")
    return redirect(url_for("admin.render_detail", key=key), code=303)


@blueprint.post("/renders/take-down")
def take_down_link() -> Response:
    form = TakeDownLinkForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return back(None, "admin.renders")
    match = _KEY_IN_TEXT.search((form.target.data or "").strip().lower())
    if match is None:
        flash(gettext("No render key found in that text: paste a share link or a key."), "error")
        return back(None, "admin.renders")
    key = match.group(1)
    _take_down(key, form.reason.data or "")
    return redirect(url_for("admin.render_detail", key=key), code=303)


def _take_down(key: str, reason: str) -> None:
    """Block, delete, purge, then leave the gallery. The order matters: once blocked, nothing
    serves or renders the key again, whatever fails after."""
    who = g.get("admin_user", "?")
    services().render.take_down(key, reason=f"{reason.strip()} (by {who})")
    try:
        services().gallery.remove(key)
    except BadInput as exc:  # not there, or the gallery changed: the key is blocked anyway
        log.info("take-down of %s: gallery unchanged (%s)", key, exc.reason)
    log.warning("admin %s took down %s: %s", who, key, reason)
    flash(
        gettext(
            "Taken down: %(key)s. Its media are deleted and it can never be made again.", key=key
        ),
        "ok",
    )
