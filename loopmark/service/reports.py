"""Visitors' reports of a GIF ("Report this GIF" on share pages), kept for the admin to act on.

A report is one small object in storage, ``reports/<render key>/<time>-<random>.json`` (the key,
the visitor's optional reason, when), like the take-down markers beside the media: one object
per report, so reports at the same moment never race, and no records schema is needed for a
handful of rare writes. Nothing about the reporter is kept (no address, no token); the site's
rate limit keeps the volume down, and at most MAX_REPORTS_PER_KEY are kept per render. Media
routes serve ``r/`` only, so reports are never public. The admin lists them (newest render
first), takes the render down or dismisses its reports; either way they are deleted.

Retention (``loopmark gc``, :meth:`Reports.collect_garbage`): a report whose render is dealt
with otherwise (taken down from the command line, or forgotten by retention: its page is gone)
is deleted, and so is any report older than the retention period, dealt with or not: a
visitor's words are not kept for ever because nobody looked at them.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from loopmark.service.blocklist import check_render_key
from loopmark.storage.base import BlobStore

log = logging.getLogger(__name__)

REPORTS_PREFIX = "reports/"
MAX_REASON_CHARS = 500
MAX_REPORTS_PER_KEY = 20  # more reports of one render add nothing the admin needs
MAX_LISTED_REPORTS = 500  # read per listing: the admin page stays quick
_REPORT_RE = re.compile(r"reports/([a-z2-7]{24})/([0-9]+)-[0-9a-f]{8}\.json")
# Control and format characters (bidi overrides, zero-width) are dropped from a reason: it is
# shown to the admin as plain text.
_UNSHOWN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


@dataclass(frozen=True)
class Report:
    key: str
    reason: str
    reported_at: float  # epoch seconds


@dataclass(frozen=True)
class ReportedRender:
    """One render's reports, newest first."""

    key: str
    reports: tuple[Report, ...]

    @property
    def latest_at(self) -> float:
        return self.reports[0].reported_at

    @property
    def reasons(self) -> list[str]:
        return [report.reason for report in self.reports if report.reason]


def clean_reason(raw: str) -> str:
    """A visitor's reason as shown to the admin: NFC, no control or format characters, runs of
    whitespace folded, at most MAX_REASON_CHARS."""
    kept = [
        " " if ch.isspace() else ch
        for ch in unicodedata.normalize("NFC", raw)
        if ch.isspace() or unicodedata.category(ch) not in _UNSHOWN
    ]
    return " ".join("".join(kept).split())[:MAX_REASON_CHARS]


class Reports:
    """Reports in storage. Every method may raise the storage's errors (StorageUnavailable)."""

    def __init__(self, blobs: BlobStore, *, clock: Callable[[], float] = time.time) -> None:
        self.blobs = blobs
        self.clock = clock

    def submit(self, key: str, reason: str = "") -> bool:
        """Keep a report of render ``key`` (BadInput for a malformed key). False when the render
        already has MAX_REPORTS_PER_KEY reports (nothing written)."""
        check_render_key(key)
        prefix = f"{REPORTS_PREFIX}{key}/"
        if sum(1 for _ in self.blobs.list(prefix)) >= MAX_REPORTS_PER_KEY:
            return False
        at = self.clock()
        body = {"key": key, "reason": clean_reason(reason), "reported_at": round(at, 3)}
        name = f"{prefix}{int(at * 1000)}-{secrets.token_hex(4)}.json"
        data = json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
        self.blobs.put(name, data, content_type="application/json")
        return True

    def pending(self, *, limit: int = MAX_LISTED_REPORTS) -> list[ReportedRender]:
        """Reported renders, the most recently reported first (at most ``limit`` reports read)."""
        found: dict[str, list[Report]] = {}
        # Newest first: names start with the report's time in milliseconds.
        blobs = sorted(
            self.blobs.list(REPORTS_PREFIX), key=lambda b: b.key.rsplit("/", 1)[-1], reverse=True
        )
        for blob in blobs[:limit]:
            match = _REPORT_RE.fullmatch(blob.key)
            if match is None:
                continue
            found.setdefault(match[1], []).append(self._read(blob.key, match[1], blob.modified_at))
        rendered = [
            ReportedRender(key, tuple(sorted(reports, key=lambda r: -r.reported_at)))
            for key, reports in found.items()
        ]
        return sorted(rendered, key=lambda r: -r.latest_at)

    def dismiss(self, key: str) -> int:
        """Delete every report of ``key``; how many there were."""
        check_render_key(key)
        names = [blob.key for blob in self.blobs.list(f"{REPORTS_PREFIX}{key}/")]
        for name in names:
            self.blobs.delete(name)
        return len(names)

    def collect_garbage(
        self, *, older_than: float, resolved: Callable[[str], bool], dry_run: bool = False
    ) -> int:
        """Delete the reports made before ``older_than`` and every report of a render that
        ``resolved(key)`` says needs no look any more; how many (would be, on a dry run)."""
        doomed: list[str] = []
        by_key: dict[str, list[str]] = {}
        for blob in self.blobs.list(REPORTS_PREFIX):
            match = _REPORT_RE.fullmatch(blob.key)
            made_at = int(match[2]) / 1000 if match else blob.modified_at
            if made_at < older_than:
                doomed.append(blob.key)
            elif match:
                by_key.setdefault(match[1], []).append(blob.key)
        for key, names in by_key.items():
            if resolved(key):
                doomed += names
        if not dry_run:
            for name in doomed:
                self.blobs.delete(name)
        return len(doomed)

    def _read(self, name: str, key: str, modified_at: float) -> Report:
        try:
            body = json.loads(self.blobs.get(name))
            return Report(
                key=key,
                reason=clean_reason(str(body.get("reason", ""))),
                reported_at=float(body.get("reported_at", modified_at)),
            )
        except (FileNotFoundError, ValueError, TypeError, AttributeError) as exc:
            # Damaged or gone since the listing: still a report, with what the listing knows.
            log.warning("report %s unreadable: %s", name, exc)
            return Report(key=key, reason="", reported_at=modified_at)
