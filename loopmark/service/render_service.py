"""The render service: look a caption's key up, or render it exactly once under a lease.

``request`` is what the site calls: validate, compute the content key, answer from the records
when the render is done, report progress when someone holds a live lease, and otherwise hand a job
to the dispatcher and record it as queued before answering (the durable queue). ``execute`` is
what a worker runs (the local pool or the Lambda handler): claim the lease with a conditional
write, render, store the media, and only then mark the record done.

Nothing accepted is lost: ``requeue_unfinished`` (a server's start) dispatches again every queued
render and every render whose worker died; a poll dispatches again a queued render that nobody
has claimed for a while (a Lambda event lost with its runtime); ``stop`` (SIGTERM) lets running
renders finish within a grace period and hands the others back to the queue.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from loopmark.brand import Brand, demo_brand
from loopmark.dispatch.base import Dispatcher, JobState, RenderJob
from loopmark.errors import (
    N_,
    BadInput,
    DispatchUnavailable,
    LoopmarkError,
    QueueFull,
    RecordsUnavailable,
    StorageUnavailable,
)
from loopmark.records.renders import (
    LEASE_SECONDS,
    MAX_ATTEMPTS,
    MAX_LIST_LIMIT,
    RenderRecord,
    RenderRecords,
    RenderStatus,
)
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.render import (
    EXTRA_KINDS,
    accept_caption,
    normalised_render_key,
    render_extras,
    render_gif_stage,
)
from loopmark.service.blocklist import check_render_key, write_marker
from loopmark.service.caption_verdicts import CaptionVerdicts
from loopmark.service.catalog import TemplateCatalog
from loopmark.service.languages import translate
from loopmark.service.metrics import Metrics
from loopmark.service.purge import CdnPurge, NoPurge
from loopmark.service.record_cache import KEEP_SECONDS, KeptDoneRecords
from loopmark.service.render_times import SEED_RECORDS as RENDER_TIMES_SEED_RECORDS
from loopmark.service.render_times import RenderTimes
from loopmark.service.words import CachedWordLists
from loopmark.storage.base import BlobStore

log = logging.getLogger(__name__)

# A worker writes its progress (and extends its lease) at most this often.
PROGRESS_WRITE_SECONDS = 0.5
# Without progress, a worker's heartbeat renews its lease this many times per lease (not more
# often than MIN_HEARTBEAT_SECONDS), so a missed beat or two never loses a live render.
HEARTBEATS_PER_LEASE = 4
MIN_HEARTBEAT_SECONDS = 0.05
# How long closing a lease keeper waits for a renewal in flight, beyond one beat.
KEEPER_JOIN_MARGIN_SECONDS = 10.0
# A request waiting on a render it cannot be woken for (Lambda) reads the records this often.
WAIT_POLL_SECONDS = 0.2
# A failed render is tried again by a poll no sooner than this after its failure.
RETRY_COOLDOWN_SECONDS = 2.0
# A queued render that no worker has claimed this many leases after it was queued is dispatched
# again by the next poll (an asynchronous Lambda event can die with its runtime); a duplicate is
# harmless, the lease keeps the render single.
REDISPATCH_AFTER_LEASES = 1.0
# A render of a template the start is still preparing is asked for again after this long.
WARM_UP_RETRY_SECONDS = 5
# The second CDN purge of a take-down comes this long after a done record may last be kept.
REPURGE_MARGIN_SECONDS = 0.5
# Failures of the infrastructure, not of the render: they give the attempt back.
TRANSIENT_ERRORS = (StorageUnavailable, RecordsUnavailable, DispatchUnavailable)
MEDIA_TYPES = {
    "gif": "image/gif",
    "mp4": "video/mp4",
    "poster": "image/jpeg",
    "card": "image/jpeg",
    "thumbnail": "image/jpeg",
}
# "card": the 1200×630 share card. Renders made before it have none: their record's media
# list no "card" key (see ``has_card``), and deleting its absent file is harmless.
MEDIA_FILES = {
    "gif": "loop.gif",
    "mp4": "loop.mp4",
    "poster": "poster.jpg",
    "card": "card.jpg",
    # The 320 px thumbnail: like the card, absent from renders made before it (``has_thumbnail``).
    "thumbnail": "thumb.jpg",
}
# A record's media field holding each rendition's size ("bytes" is the GIF's).
RENDITION_BYTES_FIELDS = {"mp4": "mp4_bytes", "card": "card_bytes"}


class RenderBlocked(BadInput):
    """The key was taken down by an admin; it is never rendered again."""

    code = "render_blocked"


class RenderGaveUp(BadInput):
    """The render failed MAX_ATTEMPTS times; asking again will not help."""

    code = "render_failed"


class TemplateChanged(LoopmarkError):
    """The template changed between the request and the render; the next request gets a new key."""

    code = "template_changed"


class TemplateNotReady(DispatchUnavailable):
    """The template is still being prepared by the server's start (its warm-up): 503 with
    Retry-After, never a visitor's wait behind a preparation."""

    code = "template_not_ready"


class LeaseLost(LoopmarkError):
    """Another worker took the lease over (ours had expired); stop and let it finish."""

    code = "lease_lost"


def renditions_of(media: dict[str, Any] | None) -> dict[str, bool]:
    """Which of a render's media are stored, from its record's media (a rendition's storage key
    is written there once it is stored): all of them when done, the GIF first while rendering."""
    return {kind: media is not None and kind in media for kind in MEDIA_FILES}


# What a visitor is told of a render (a failed one is an error, not a status).
OutcomeStatus = Literal["done", "queued", "rendering"]


@dataclass(frozen=True)
class RenderOutcome:
    """What the site answers for a key: done with media URLs, or waiting with honest progress."""

    key: str
    status: OutcomeStatus
    position: int = 0
    progress: float = 0.0
    eta_seconds: float | None = None
    media: dict[str, Any] = field(default_factory=dict)  # width, height, frames, bytes, ...
    template_id: str = ""
    caption: str = ""
    # Which renditions are stored: the GIF lands first, while the status is still "rendering".
    renditions: dict[str, bool] = field(default_factory=lambda: renditions_of(None))
    # A rendition's storage URL (signed on private storage), made only when ``urls`` is asked
    # for: the site links media its own way (web.links), so a cache hit signs nothing.
    media_url: Callable[[str], str] | None = field(default=None, repr=False, compare=False)

    @property
    def urls(self) -> dict[str, str]:
        """Storage URLs: every rendition's when done; while rendering, those stored already."""
        if self.media_url is None:
            return {}
        kinds = (
            MEDIA_FILES if self.status == "done" else [k for k, on in self.renditions.items() if on]
        )
        return {kind: self.media_url(kind) for kind in kinds}


class StatsCounter(Protocol):
    """Where render and cache-hit events are counted (records.stats, usually buffered)."""

    def count(self, *, template_id: str, event: str, caption: str | None = None) -> None: ...


def media_keys(key: str) -> dict[str, str]:
    """Storage keys of a render's media, derived from its content key alone."""
    return {kind: f"r/{key[:2]}/{key}/{name}" for kind, name in MEDIA_FILES.items()}


def has_card(media: dict[str, Any] | None) -> bool:
    """Whether a done render's media (its record's) include the share card: renders made before
    cards existed do not."""
    return media is not None and "card" in media


def has_thumbnail(media: dict[str, Any] | None) -> bool:
    """Whether a done render's media include the thumbnail (renders made before it do not)."""
    return media is not None and "thumbnail" in media


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RenderService:
    def __init__(
        self,
        *,
        catalog: TemplateCatalog,
        blobs: BlobStore,
        records: RenderRecords,
        metrics: Metrics | None = None,
        words: CachedWordLists,
        stats: StatsCounter | None = None,
        purge: CdnPurge | None = None,
        owner: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
        brand: Brand | None = None,
    ) -> None:
        self.catalog = catalog
        self.brand = brand  # dresses the share cards (None: the demo brand)
        self.blobs = blobs
        # Done records kept a second: the reads a crowd's cache hits and share pages repeat.
        self.records = KeptDoneRecords(records)
        self.metrics = metrics or Metrics()
        self.words = words
        self.stats = stats
        self.purge = purge or NoPurge()
        self.owner = owner or default_owner()
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._dispatcher: Dispatcher | None = None
        # The caption policy's verdicts by (template version, caption, word lists' version).
        self.verdicts = CaptionVerdicts()
        # Keys this process's workers hold the lease of: what ``stop`` hands back.
        self._running: set[str] = set()
        self._running_lock = threading.Lock()
        self._repurges: list[threading.Timer] = []  # second CDN purges due (see _delete_media)
        # ETAs of renders that run elsewhere (Lambda, another process), from measured times.
        self.render_times = RenderTimes(
            seed=lambda: self.records.list_recent(limit=RENDER_TIMES_SEED_RECORDS)
        )

    # Wiring: the dispatcher runs ``execute``, so it is attached after construction.
    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            raise RuntimeError("no dispatcher attached to the render service")
        return self._dispatcher

    def attach(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self.metrics.track_queue_depth(dispatcher.queue_depth)

    def close(self) -> None:
        """Stop the workers, write the last statistics, release the records (shutdown, tests)."""
        self.stop(grace_s=0.0)
        with self._running_lock:
            repurges = list(self._repurges)
        for timer in repurges:
            timer.join()  # due within KEEP_SECONDS + REPURGE_MARGIN_SECONDS
        close_stats = getattr(self.stats, "close", None)
        if close_stats is not None:
            close_stats()
        self.records.close()

    def stop(self, *, grace_s: float) -> int:
        """Stop taking renders (new ones: DispatchUnavailable, 503), give the running ones up to
        ``grace_s`` to finish, and hand back to the queue those still running: their records
        say "queued" again, with the attempt returned, for the next start. Queued renders stay
        queued. Returns how many were handed back. Safe to call twice."""
        if self._dispatcher is not None:
            self._dispatcher.close(grace_s=grace_s)
        with self._running_lock:
            running = sorted(self._running)
        handed_back = 0
        for key in running:
            try:
                handed_back += self.records.release(key, owner=self.owner)
            except LoopmarkError as exc:  # its lease lapses instead: taken over within one
                log.warning("render %s not handed back: %s", key, exc.reason)
        if handed_back:
            log.info("handed %d unfinished renders back to the queue", handed_back)
        return handed_back

    def requeue_unfinished(self, *, limit: int = MAX_LIST_LIMIT, min_age_s: float = 0.0) -> int:
        """Dispatch again what was accepted but not finished (a server's start): queued renders
        and renders whose worker died, oldest first, at most ``limit``, skipping those queued
        less than ``min_age_s`` ago. Stops when the dispatcher is full; the rest wait for a
        poll or the next start. Harmless when two processes do it: the lease keeps each render
        single. Returns how many jobs were dispatched."""
        now = self.clock()
        dispatched = 0
        for record in self.records.list_unfinished(limit=limit):
            if record.status == RenderStatus.QUEUED and now - record.updated_at < min_age_s:
                continue
            try:
                self.dispatcher.submit(_job_of(record))
            except (QueueFull, DispatchUnavailable) as exc:
                log.warning("re-queued %d renders, the rest wait: %s", dispatched, exc.reason)
                break
            dispatched += 1
        return dispatched

    # -- what the web reads: the records and media behind the service, never the ports ------

    def record(self, key: str) -> RenderRecord | None:
        """The render's record (any status), or None when the key is unknown."""
        return self.records.get(key)

    def recent(
        self,
        *,
        limit: int,
        before: float | None = None,
        template_id: str | None = None,
        query: str | None = None,
    ) -> list[RenderRecord]:
        """Renders newest first (the admin's search); see RenderRecords.list_recent."""
        return self.records.list_recent(
            limit=limit, before=before, template_id=template_id, query=query
        )

    @property
    def media_urls_are_public(self) -> bool:
        """Whether media URLs may be shown as they are (local files, or a public CDN) rather
        than through short links that sign them afresh."""
        return self.blobs.urls_are_public

    def media_urls(self, key: str) -> dict[str, str]:
        """Storage URLs of a render's ``gif``, ``mp4`` and ``poster`` (signed when private)."""
        return {kind: self.blobs.url(storage_key) for kind, storage_key in media_keys(key).items()}

    def _media_url_of(self, key: str) -> Callable[[str], str]:
        """Render ``key``'s storage URL for one rendition kind (as ``media_urls`` makes them)."""
        keys = media_keys(key)
        return lambda kind: self.blobs.url(keys[kind])

    def download_url(self, key: str, kind: str, filename: str) -> str | None:
        """A short-lived URL that saves the render's ``kind`` file as ``filename``, or None when
        storage is local and the caller serves ``local_media_file`` itself (see BlobStore)."""
        storage_key = media_keys(key)[kind]
        return self.blobs.download_url(storage_key, filename, content_type=MEDIA_TYPES[kind])

    def local_media_file(self, storage_key: str) -> Path | None:
        """The local file behind a storage key, where storage is a local folder; else None."""
        return self.blobs.local_path(storage_key)

    def health_checks(self) -> dict[str, Callable[[], None]]:
        """One cheap probe per backend, each raising a LoopmarkError when it is down."""
        return {
            "storage": self.blobs.check,
            "records": self.records.check,
            "dispatcher": self.dispatcher.check,
        }

    def check_caption(self, template_id: str, caption: str) -> str:
        """The caption as the template would accept it (normalised), or CaptionRejected."""
        lists, words_version = self.words.current()
        template = self.catalog.get(template_id)
        return self.verdicts.accept(template, caption, lists, words_version)[0]

    # -- the site's side ----------------------------------------------------------------------

    def request(
        self,
        template_id: str,
        caption: str,
        *,
        wait_s: float = 0.0,
        admit: Callable[[], None] | None = None,
    ) -> RenderOutcome:
        """Answer a visitor's render request; may wait up to ``wait_s`` for a quick render.

        ``admit`` is called only when this request is about to queue a new render (not for a
        cache hit, nor for a render already under way): the site's render limits, which may
        raise to refuse it.

        Raises BadInput (unknown template, refused caption, blocked key), QueueFull, and the
        backends' *Unavailable errors.
        """
        template = self.catalog.get(template_id)
        lists, words_version = self.words.current()
        normalised, key = self.verdicts.accept(template, caption, lists, words_version)
        record = self.records.get(key)
        if record is not None and record.status == "done":
            self.metrics.cache_hits.inc()
            self._count(template.id, "cache_hit", normalised)
            return self._done(record)
        self._refuse_dead(record)
        if record is None or not record.lease_live(self.clock()):
            if self.catalog.warming(template):
                raise TemplateNotReady(
                    "This loop is still getting ready. Please try again in a few seconds.",
                    retry_after_s=WARM_UP_RETRY_SECONDS,
                )
            if admit is not None:
                admit()
            # Dispatched, then recorded: a full queue refuses before anything is written, and
            # the 202 goes out only once the record says "queued".
            job = RenderJob(key, template.id, normalised, words_version)
            self._dispatch(job, record)
        if wait_s > 0:
            self._wait_for(key, wait_s)
        outcome = self.status(key)
        if outcome is None:  # the record vanished in between (a purge): report it as queued
            return RenderOutcome(key, "queued", template_id=template.id, caption=normalised)
        return outcome

    def _wait_for(self, key: str, wait_s: float) -> None:
        """Wait until the key is done or ``wait_s`` passes. A local dispatcher holding the job
        wakes us when it ends, so the records are not read meanwhile (a held request read them
        every 0.2 s before: ten reads a request, most of the records' load in a spike); one
        that cannot block for us (Lambda), or that does not hold the job, is backed by polling
        the records between short waits."""
        deadline = time.monotonic() + wait_s
        while (remaining := deadline - time.monotonic()) > 0:
            step = min(WAIT_POLL_SECONDS, remaining)
            started = time.monotonic()
            state = self.dispatcher.wait(key, step)
            if state is not None and isinstance(state.error, DispatchUnavailable):
                return  # dropped by a stopping pool: its record keeps it queued (see status)
            self._raise_failed(state)
            if state is not None and state.state == "done":
                return
            blocked = time.monotonic() - started >= step
            if blocked and state is not None and state.state in ("queued", "rendering"):
                continue  # held here: its end wakes us, the records have nothing to add
            record = self.records.get(key)
            if record is not None and record.status in ("done", "blocked", "failed"):
                return
            if not blocked:  # the dispatcher could not block for us
                time.sleep(max(0.0, step - (time.monotonic() - started)))

    def status(self, key: str) -> RenderOutcome | None:
        """The state of a key: done, queued or rendering; None if nobody knows it.

        A key whose last render failed or crashed (and may still be retried), or that is queued
        in the records but not held by this process's dispatcher (a restart, a lost Lambda
        event), is dispatched again here, so a visitor polling for it is never left waiting on
        a job that no longer exists.
        """
        record = self.records.get(key)
        outcome = self._status(key, record)
        if outcome is not None and outcome.status != "done" and record is not None:
            if record.media and record.lease_live(self.clock()):
                # Under way with its first renditions stored (the GIF before the MP4).
                stored = record.media
                outcome = replace(
                    outcome,
                    media=dict(stored),
                    renditions=renditions_of(stored),
                    media_url=self._media_url_of(key),
                )
        return outcome

    def _status(self, key: str, record: RenderRecord | None) -> RenderOutcome | None:
        if record is not None and record.status == "done":
            self.render_times.observe(record)
            return self._done(record)
        self._refuse_dead(record)
        state = self.dispatcher.state(key)
        now = self.clock()
        if record is not None and record.lease_live(now):
            if state is not None and state.state == "rendering":
                return self._waiting(key, state, record)  # this process renders it
            # Rendered elsewhere (Lambda, another process): the record carries its real
            # progress, and the ETA comes from the render times measured there.
            return RenderOutcome(
                key,
                "rendering",
                progress=record.progress,
                eta_seconds=self.render_times.remaining(record.template_id, record.progress),
                template_id=record.template_id,
                caption=record.caption,
            )
        if state is not None and state.state in ("queued", "rendering"):
            if record is None or not self._redispatch_due(record, now):
                return self._waiting(key, state, record)  # submitted, its lease not claimed yet
        if record is not None:  # queued, failed or crashed, and retries are left
            cooling = record.updated_at + RETRY_COOLDOWN_SECONDS - now
            if record.status == "failed" and cooling > 0:
                # Straight after a failure (an outage, most likely) polls wait a moment rather
                # than render again at every poll.
                return RenderOutcome(
                    key,
                    "queued",
                    eta_seconds=cooling,
                    template_id=record.template_id,
                    caption=record.caption,
                )
            try:
                retry = self._dispatch(_job_of(record), record)
            except (QueueFull, DispatchUnavailable) as exc:
                if record.status != RenderStatus.QUEUED:
                    raise
                # Accepted and recorded already: it waits for room (the next poll, or start).
                return RenderOutcome(
                    key,
                    "queued",
                    eta_seconds=exc.retry_after_s or self.render_times.expected(record.template_id),
                    template_id=record.template_id,
                    caption=record.caption,
                )
            return self._waiting(key, retry, record)
        self._raise_failed(state)
        if state is not None and state.state == "done":
            # Finished here, but its record is not done: another worker completes it.
            return RenderOutcome(key, "rendering", progress=1.0)
        return None

    def _dispatch(self, job: RenderJob, record: RenderRecord | None) -> JobState:
        """Submit ``job``, then make sure its record says queued (unless a worker got to it
        first): the durable queue a restarted server reads. A queued record is so already, and
        a crashed render's record (rendering, its lease expired) is found as it is."""
        state = self.dispatcher.submit(job)
        self._raise_failed(state)
        if record is None or record.status == RenderStatus.FAILED:
            self.records.enqueue(
                job.key,
                template_id=job.template_id,
                caption=job.caption,
                words_version=job.words_version,
            )
        return state

    def _redispatch_due(self, record: RenderRecord, now: float) -> bool:
        """Whether a job this dispatcher says it holds should be submitted again: a crashed or
        failed render always (a local pool answers with the job it holds), a queued one when
        nobody claimed it within REDISPATCH_AFTER_LEASES leases."""
        if record.status != RenderStatus.QUEUED:
            return True
        return now - record.updated_at > self.lease_seconds * REDISPATCH_AFTER_LEASES

    def _waiting(self, key: str, state: JobState, record: RenderRecord | None) -> RenderOutcome:
        eta = state.eta_seconds
        if eta is None and state.state == "queued":
            # A dispatcher that cannot tell (Lambda): a whole render, as measured.
            eta = self.render_times.expected(record.template_id if record else "")
        return RenderOutcome(
            key,
            "queued" if state.state == "queued" else "rendering",
            position=state.position,
            progress=state.progress,
            eta_seconds=eta,
            template_id=record.template_id if record else "",
            caption=record.caption if record else "",
        )

    def _done(self, record: RenderRecord) -> RenderOutcome:
        media = dict(record.media or {})
        return RenderOutcome(
            record.key,
            "done",
            progress=1.0,
            eta_seconds=0.0,
            media=media,
            media_url=self._media_url_of(record.key),
            template_id=record.template_id,
            caption=record.caption,
            renditions=renditions_of(media),
        )

    def _refuse_dead(self, record: RenderRecord | None) -> None:
        if record is None:
            return
        if record.status == "blocked":
            raise RenderBlocked(N_("This GIF was taken down and can't be made again."))
        crashed = record.status == "rendering" and not record.lease_live(self.clock())
        if record.attempts >= MAX_ATTEMPTS and (record.status == "failed" or crashed):
            raise RenderGaveUp(N_("This GIF could not be made. Please try another caption."))

    @staticmethod
    def _raise_failed(state: JobState | None) -> None:
        if state is not None and state.state == "failed" and state.error is not None:
            raise state.error

    # -- the worker's side --------------------------------------------------------------------

    def execute(self, job: RenderJob, report: Callable[[float], None]) -> None:
        """Render one job under the lease; a no-op if someone else holds it or it is done.

        Idempotent under duplicate delivery (a second Lambda event finds the lease taken).
        """
        before = self.records.get(job.key)
        claimed = self.records.claim_lease(
            job.key,
            owner=self.owner,
            template_id=job.template_id,
            caption=job.caption,
            lease_seconds=self.lease_seconds,
        )
        if claimed is None:
            log.info("render %s: lease held elsewhere or finished; nothing to do", job.key)
            return
        if before is not None and before.status == "rendering":
            self.metrics.lease_takeovers.inc()
            log.warning("render %s: took over an expired lease from %s", job.key, before.owner)
        with self._running_lock:
            self._running.add(job.key)
        try:
            self._execute_claimed(job, report)
        finally:
            with self._running_lock:
                self._running.discard(job.key)

    def _execute_claimed(self, job: RenderJob, report: Callable[[float], None]) -> None:
        started = time.perf_counter()
        try:
            with _LeaseKeeper(self, job.key, report) as keeper:
                media = self._render_and_store(job, keeper, started)
        except LeaseLost:
            # Our lease expired and another worker took over: it will finish the render (or
            # the key was taken down while we stored: its media are deleted again).
            self.metrics.renders.labels(result="lost_lease").inc()
            self._delete_media_if_blocked(job.key)
            return
        except LoopmarkError as exc:
            self.records.fail(
                job.key,
                owner=self.owner,
                error=f"{exc.code}: {exc.reason}",
                retryable=isinstance(exc, TRANSIENT_ERRORS),
            )
            self.metrics.renders.labels(result="failed").inc()
            raise
        except Exception as exc:
            self.records.fail(job.key, owner=self.owner, error=f"internal: {type(exc).__name__}")
            self.metrics.renders.labels(result="failed").inc()
            raise
        # "done" only now that every rendition is stored.
        if self.records.complete(job.key, owner=self.owner, media=media):
            self.metrics.renders.labels(result="done").inc()
            self._count(job.template_id, "render", job.caption)
        else:
            self.metrics.renders.labels(result="lost_lease").inc()
            self._delete_media_if_blocked(job.key)
        self.metrics.render_seconds.observe(time.perf_counter() - started)

    def _render_and_store(
        self, job: RenderJob, keeper: _LeaseKeeper, started: float
    ) -> dict[str, Any]:
        """Render in stages and store each rendition as it lands: the GIF first, recorded at
        once (the API and pages offer it while the rest is made), then the poster, the MP4 and
        the share card. Returns the media a done record carries."""
        prepared = self._prepared(job)
        stage = render_gif_stage(prepared, job.caption, job.key, progress=keeper)
        storage_keys = media_keys(job.key)
        self._put(storage_keys, "gif", stage.gif)
        media: dict[str, Any] = {
            "gif": storage_keys["gif"],
            "bytes": len(stage.gif),
            "frames": stage.frames,
            "width": stage.width,
            "height": stage.height,
            "seconds": stage.seconds,
        }
        if stage.budget is not None:
            # What the GIF size budget did: "bytes" above is the GIF's, "width" and "height"
            # the render's own (MP4, poster, card); the budget's are the GIF's.
            media["budget"] = stage.budget.to_json()
        language = self._caption_language(job)
        if language:
            media["lang"] = language  # a predefined caption's language: the share page's
        self._record_renditions(job.key, media)
        brand = self.brand or demo_brand()
        # The card's words follow the caption: a predefined caption's language, else the brand's.
        card_line = translate(brand.share.card_line, language or brand.language)
        extras = render_extras(prepared, stage, progress=keeper, brand=brand, card_line=card_line)
        for kind, payload in extras:
            self._put(storage_keys, kind, payload)
            media[kind] = storage_keys[kind]
            if kind in RENDITION_BYTES_FIELDS:
                media[RENDITION_BYTES_FIELDS[kind]] = len(payload)
            if kind != EXTRA_KINDS[-1]:  # the last one lands with "done"
                self._record_renditions(job.key, media)
        # Claim to stored media, as this worker measured it: other processes' ETAs.
        media["render_seconds"] = round(time.perf_counter() - started, 3)
        return media

    def _record_renditions(self, key: str, media: dict[str, Any]) -> None:
        if not self.records.record_renditions(key, owner=self.owner, media=dict(media)):
            raise LeaseLost(f"render {key} lost its lease")

    def _delete_media_if_blocked(self, key: str) -> None:
        """A render that lost its record to a take-down while it stored: the take-down deleted
        the media before we wrote them again, so delete them now."""
        record = self.records.get(key)
        if record is not None and record.status == "blocked":
            self._delete_media(key)

    def _caption_language(self, job: RenderJob) -> str | None:
        """The language of the template's caption set holding the caption; None for the
        visitor's own words (or a template that cannot be read now: the language is a nicety)."""
        try:
            template = self.catalog.get(job.template_id, enabled_only=False)
        except LoopmarkError:
            return None
        return template.caption_language(job.caption)

    def _count(self, template_id: str, event: str, caption: str) -> None:
        """Statistics are best effort: a counter must never fail a render or a cache hit."""
        if self.stats is None:
            return
        try:
            self.stats.count(template_id=template_id, event=event, caption=caption)
        except LoopmarkError as exc:
            log.warning("statistics not counted (%s): %s", event, exc.reason)

    # -- the admin's side ---------------------------------------------------------------------

    def take_down(self, key: str, *, reason: str) -> None:
        """Block the key for ever, keep the block beside the media too, delete its media, and
        ask the CDN to forget them.

        Blocking comes first, so a render racing the take-down can never be marked done (its
        ``complete`` finds the record blocked) and no request starts a new one. The marker in
        storage (service.blocklist) is what a restored database gets the block back from; if
        writing it fails the take-down fails loudly, and doing it again is safe.
        """
        check_render_key(key)
        self.records.block(key, reason=reason)
        write_marker(self.blobs, key, reason=reason, at=self.clock())
        self._delete_media(key)

    def _delete_media(self, key: str) -> None:
        for storage_key in media_keys(key).values():
            self.blobs.delete(storage_key)
        # The media where the CDN serves them (their public URLs' paths, which follow
        # LOOPMARK_MEDIA_BASE_URL: /media/r/… on AWS), and the site's cached pages that show this
        # render or its caption. Signed media URLs bypass the CDN: nothing to forget there.
        media = (
            [urlsplit(url).path.lstrip("/") for url in self.media_urls(key).values()]
            if self.media_urls_are_public
            else []
        )
        pages = [f"s/{key}", f"r/{key}", f"api/renders/{key}"]
        pages += [f"m/{key}.{ext}" for ext in ("gif", "mp4", "jpg", "card.jpg", "thumb.jpg")]
        self.purge(media + pages)
        if not isinstance(self.purge, NoPurge):
            # Another server (or Lambda instance) may keep the done record it read just before
            # the block for a second more (service.record_cache), and the CDN may cache what it
            # answers after this purge: purge again once that second is over.
            self._purge_later(media + pages)

    def _purge_later(self, paths: list[str]) -> None:
        def again() -> None:
            try:
                self.purge(paths)
            except LoopmarkError as exc:
                log.warning("second CDN purge failed: %s", exc.reason)

        timer = threading.Timer(KEEP_SECONDS + REPURGE_MARGIN_SECONDS, again)
        timer.daemon = False  # a command-line take-down waits for it before exiting
        with self._running_lock:
            self._repurges = [t for t in self._repurges if t.is_alive()] + [timer]
        timer.start()

    def _prepared(self, job: RenderJob) -> PreparedTemplate:
        """The prepared template of a job the site already checked: its caption is trusted as
        normalised and accepted, unless the word lists moved since (then the policy runs
        again). The template is looked up afresh: a key that no longer matches it is a changed
        template."""
        template = self.catalog.get(job.template_id, enabled_only=False)
        if normalised_render_key(template, job.caption) != job.key:
            raise TemplateChanged(f"template {job.template_id!r} changed; please try again")
        lists, words_version = self.words.current()
        if job.words_version is None or job.words_version != words_version:
            accept_caption(template, job.caption, lists)
        prepared = self.catalog.prepared(template)
        # The template as the key was made from it: its prepared artifacts may have been loaded
        # with an earlier object of the same version (one whose GIF budget has since changed:
        # the budget is in the key, not the version).
        return replace(prepared, template=template)

    def _put(self, storage_keys: dict[str, str], kind: str, payload: bytes) -> None:
        try:
            self.blobs.put(storage_keys[kind], payload, content_type=MEDIA_TYPES[kind])
        except StorageUnavailable:
            raise
        except OSError as exc:
            raise StorageUnavailable(f"could not store the {kind}") from exc


def _job_of(record: RenderRecord) -> RenderJob:
    """The job that renders a recorded key again."""
    return RenderJob(record.key, record.template_id, record.caption, record.words_version)


class _LeaseKeeper:
    """Keeps a claimed lease alive for as long as its render runs.

    As the progress callback it writes the render's real progress (extending the lease) at most
    every PROGRESS_WRITE_SECONDS; a heartbeat thread renews the lease every quarter lease when
    no progress came (a template being prepared, media being stored). So a lease can be short
    (LEASE_SECONDS): a worker that dies stops renewing and its render is taken over within one
    lease. A renewal refused means another worker took over: the next report raises LeaseLost.
    """

    def __init__(self, service: RenderService, key: str, report: Callable[[float], None]) -> None:
        self.service = service
        self.key = key
        self.report = report
        self.interval = max(MIN_HEARTBEAT_SECONDS, service.lease_seconds / HEARTBEATS_PER_LEASE)
        self._write = threading.Lock()  # one renewal at a time
        self._fraction = 0.0
        self._last_write = 0.0  # the first report is written at once: visible progress
        self._lost = False
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name=f"lease-{key[:8]}", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._beat.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._beat.join(timeout=self.interval + KEEPER_JOIN_MARGIN_SECONDS)

    def __call__(self, fraction: float) -> None:
        self.report(fraction)
        self._fraction = fraction
        due = time.monotonic() - self._last_write >= PROGRESS_WRITE_SECONDS or fraction >= 1.0
        if due:
            self._renew()
        if self._lost:
            raise LeaseLost(f"render {self.key} lost its lease")

    def _renew(self) -> None:
        with self._write:
            extended = self.service.records.extend_lease(
                self.key,
                owner=self.service.owner,
                lease_seconds=self.service.lease_seconds,
                progress=self._fraction,
            )
            self._last_write = time.monotonic()
        if not extended:
            self._lost = True

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.interval) and not self._lost:
            if time.monotonic() - self._last_write < self.interval:
                continue  # progress writes renewed it lately
            try:
                self._renew()
            except LoopmarkError as exc:
                # The records are down: keep trying; if they stay down the lease lapses and
                # another worker takes over, which the render then learns at its next report.
                log.warning("render %s: lease not renewed: %s", self.key, exc.reason)
