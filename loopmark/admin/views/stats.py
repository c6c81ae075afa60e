"""Statistics: renders per template per day, the cache hit rate, the most used captions."""

from __future__ import annotations

from collections import defaultdict

from flask import render_template

from loopmark.admin import blueprint
from loopmark.web.context import services

DAYS = 14
CAPTION_DAYS = 30
TOP_CAPTIONS = 20


@blueprint.get("/stats")
def stats() -> str:
    records = services().stats
    per_day = records.renders_per_day(days=DAYS)
    templates = sorted({template_id for _, template_id, _ in per_day})
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for day, template_id, count in per_day:
        table[day][template_id] = count
    days = sorted(table, reverse=True)
    totals = {tid: sum(table[day].get(tid, 0) for day in days) for tid in templates}
    return render_template(
        "admin/stats.html",
        enabled=True,
        days=days,
        templates=templates,
        table=table,
        totals=totals,
        total=sum(totals.values()),
        hit_rate=records.cache_hit_rate(days=DAYS),
        captions=records.top_captions(limit=TOP_CAPTIONS, days=CAPTION_DAYS),
        window_days=DAYS,
        caption_days=CAPTION_DAYS,
    )
