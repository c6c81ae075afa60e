"""Visitors' reports ("Report this GIF" on share pages) in the renders view: each reported render
with its reasons, a take-down button (the same take-down as the render's page) and a dismiss
button. Both delete the render's reports. Listed from storage (``service.reports``) only when
the renders page asks (``reported_renders`` in its template)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, url_for
from flask_babel import ngettext
from werkzeug.wrappers import Response

from loopmark.admin import blueprint
from loopmark.admin.forms import TakeDownForm
from loopmark.admin.views import flash_form_errors
from loopmark.admin.views.renders import _take_down, format_time
from loopmark.errors import LoopmarkError
from loopmark.service.reports import ReportedRender
from loopmark.web import links
from loopmark.web.context import services

log = logging.getLogger(__name__)

MAX_SHOWN = 50  # reported renders on the page; the rest wait for these to be dealt with


@dataclass(frozen=True)
class ReportRow:
    reported: ReportedRender
    poster_url: str
    caption: str

    @property
    def when(self) -> str:
        return format_time(self.reported.latest_at)


@blueprint.app_context_processor
def _reports_context() -> dict[str, Any]:
    return {"reported_renders": reported_renders}


def reported_renders() -> list[ReportRow] | None:
    """The reported renders, most recently reported first; None when storage cannot list them."""
    try:
        pending = services().reports.pending()[:MAX_SHOWN]
    except LoopmarkError as exc:
        log.warning("reports unavailable: %s", exc.reason)
        return None
    rows = []
    for reported in pending:
        try:
            record = services().render.record(reported.key)
        except LoopmarkError:
            record = None
        rows.append(
            ReportRow(
                reported=reported,
                poster_url=links.media_urls(reported.key)["poster"],
                caption=record.caption if record is not None else "",
            )
        )
    return rows


@blueprint.post("/reports/<key>/take-down")
def report_take_down(key: str) -> Response:
    if not links.well_formed_key(key):
        abort(404)
    form = TakeDownForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("admin.renders"), code=303)
    _take_down(key, form.reason.data or "")
    services().reports.dismiss(key)
    return redirect(url_for("admin.renders"), code=303)


@blueprint.post("/reports/<key>/dismiss")
def report_dismiss(key: str) -> Response:
    if not links.well_formed_key(key):
        abort(404)
    count = services().reports.dismiss(key)
    message = ngettext(
        "Dismissed %(num)d report of %(key)s; the GIF stays up.",
        "Dismissed %(num)d reports of %(key)s; the GIF stays up.",
        count,
        key=key,
    )
    flash(message, "ok")
    return redirect(url_for("admin.renders"), code=303)
