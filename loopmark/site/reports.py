""" "Report this GIF": a small form linked from every share page, whose reports land in the
admin's renders view (``service.reports``).

``GET /s/<key>/report`` shows the form (the reason is optional); ``POST`` keeps the report and
thanks the visitor. A key that is not a render is 404, a taken-down one 410. Reports are limited
per address (REPORT_RATE_LIMIT, moving window, in memory like the site's other limits; off with
LOOPMARK_RATE_LIMITS=off): past it the form says when to try again (429 with Retry-After). The
form takes no session and so no CSRF token: a forged report is an anonymous report, which the
limit bounds and an admin dismisses.
"""

from __future__ import annotations

import math
import time

from flask import Blueprint, Flask, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from loopmark.records.renders import RenderStatus
from loopmark.service.reports import MAX_REASON_CHARS
from loopmark.web import limits, links
from loopmark.web.context import services
from loopmark.web.i18n import gettext

blueprint = Blueprint("reports", __name__)

REPORT_RATE_LIMIT = "5/hour;20/day"  # per address: reports are rare, a flood is not
LIMITER_EXTENSION = "loopmark.report_limiter"
NO_STORE = "no-store"


class ReportLimit:
    """Reports per address in a moving window (the ``limits`` library, in memory)."""

    def __init__(self, text: str) -> None:
        self.items = parse_many(text)
        self.strategy = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, address: str) -> int | None:
        """Count a report from ``address``; None when admitted, else seconds to wait."""
        for item in self.items:
            if not self.strategy.test(item, "report", address):
                reset_at = self.strategy.get_window_stats(item, "report", address).reset_time
                return max(1, math.ceil(reset_at - time.time()))
        for item in self.items:
            self.strategy.hit(item, "report", address)
        return None


@blueprint.record_once
def _attach_limit(state: object) -> None:
    app: Flask = state.app  # type: ignore[attr-defined]  # BlueprintSetupState
    app.extensions[LIMITER_EXTENSION] = ReportLimit(REPORT_RATE_LIMIT)


@blueprint.route("/s/<key>/report", methods=["GET", "POST"])
def report(key: str) -> ResponseReturnValue:
    if not links.well_formed_key(key):
        abort(404)
    if key in services().blocklist:
        return _page(key, "gone", 410)
    record = services().render.record(key)
    if record is None:
        abort(404)
    if record.status == RenderStatus.BLOCKED:
        return _page(key, "gone", 410)
    if request.method == "GET":
        return _page(key, "form", 200)
    reason = request.form.get("reason", "")
    if len(reason) > MAX_REASON_CHARS:
        return _page(
            key,
            "form",
            400,
            error=gettext("Please keep it under %(max)d characters.", max=MAX_REASON_CHARS),
        )
    if current_app.config.get("RATELIMIT_ENABLED", True):
        limit: ReportLimit = current_app.extensions[LIMITER_EXTENSION]
        wait_s = limit.hit(limits.client_address())
        if wait_s is not None:
            response = current_app.make_response(_page(key, "limited", 429, wait_s=wait_s))
            response.headers["Retry-After"] = str(wait_s)
            return response
    services().reports.submit(key, reason)
    return _page(key, "thanks", 200)


def _page(key: str, state: str, status: int, **extra: object) -> ResponseReturnValue:
    html = render_template("report.html", key=key, state=state, max_chars=MAX_REASON_CHARS, **extra)
    return html, status, {"Cache-Control": NO_STORE}
