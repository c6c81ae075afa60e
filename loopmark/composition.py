"""The composition root: every service built from Settings, in one place.

This is the only module that looks at backend URLs and opens adapters (storage, records,
dispatch, CDN purge). The web app, the command line and the Lambda handler each call
:func:`build_services` and speak to the services it returns; nothing below this layer opens a
backend, and no view branches on one. Nothing is connected yet when it returns: clients and
connections are made on first use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

from loopmark import prompt_calls
from loopmark.config import Settings
from loopmark.dispatch import open_dispatcher
from loopmark.errors import RecordsUnavailable, StorageUnavailable
from loopmark.records import open_render_records, setup_all
from loopmark.records.gallery import open_gallery_records
from loopmark.records.retention import open_retention_records
from loopmark.records.stats import open_stats_records
from loopmark.records.users import open_user_records
from loopmark.records.words import open_word_records
from loopmark.service.admin_access import AdminSessions, LoginLimits, parse_limits
from loopmark.service.blocklist import Blocklist, marked_keys, reapply
from loopmark.service.breaker import DEFAULT_WINDOW_CALLS, CircuitBreaker, guarded
from loopmark.service.catalog import (
    DirectoryTemplateCatalog,
    StoredTemplateCatalog,
    TemplateCatalog,
)
from loopmark.service.clips import ClipCatalog
from loopmark.service.gallery import InMemoryGallery
from loopmark.service.metrics import Metrics
from loopmark.service.purge import open_cdn_purge
from loopmark.service.render_service import RenderService
from loopmark.service.reports import Reports
from loopmark.service.retention import GcReport, HitLog, collect_garbage
from loopmark.service.stats_buffer import BufferedStats
from loopmark.service.uploads import UploadService
from loopmark.service.users import AdminUsers
from loopmark.service.words import CachedWordLists
from loopmark.storage import open_blob_store
from loopmark.storage.base import BlobStore


@dataclass
class Services:
    """What the entry points use: the render service and everything beside it."""

    settings: Settings
    templates: TemplateCatalog
    render: RenderService
    gallery: InMemoryGallery
    words: CachedWordLists
    stats: BufferedStats
    users: AdminUsers
    metrics: Metrics
    blocklist: Blocklist
    admin_sessions: AdminSessions
    login_limits: LoginLimits
    hits: HitLog
    reports: Reports  # visitors' "Report this GIF", kept in storage for the admin
    uploads: UploadService  # visitors' clips (issue 13); the site offers it when settings say

    def close(self) -> None:
        """Stop the render pool, write the last statistics, close the records (shutdown, tests)."""
        self.hits.close()  # writes the last render hits
        self.render.close()  # closes its stats buffer and render records too
        self.gallery.close()
        self.words.close()
        self.users.close()


R = TypeVar("R")

# Backends reached over a network (DynamoDB, S3), whose calls are bounded by prompt_calls.
REMOTE_SCHEMES = ("dynamodb://", "s3://")
# Calls that finish a render already under way are never refused by an open breaker (only
# counted): its media and its "done" are work that can still be saved.
RECORDS_ALWAYS = frozenset({"extend_lease", "record_renditions", "complete", "fail", "release"})
STORAGE_ALWAYS = frozenset({"put"})
# Port methods that may rightly take longer than a read timeout, answered all along (a file
# streamed, a listing read page by page): refused while the breaker is open, but their wait is
# not taken for a stalled backend (service.breaker), which would refuse everyone else's calls.
RECORDS_PATIENT = frozenset({"list_unfinished", "list_recent"})
STORAGE_PATIENT = frozenset({"get_file", "put_file", "list"})
# BlobStore methods that reach no backend: a URL (presigning is local), a local file's path.
STORAGE_EXEMPT = frozenset({"url", "local_path", "urls_are_public", "presigned_post"})


@dataclass(frozen=True)
class Breakers:
    """One circuit breaker per backend, shared by every port over it."""

    records: CircuitBreaker
    storage: CircuitBreaker

    @classmethod
    def from_settings(cls, settings: Settings) -> Breakers:
        def breaker(
            name: str, error: type[RecordsUnavailable | StorageUnavailable], url: str
        ) -> CircuitBreaker:
            return CircuitBreaker(
                name,
                error=error,
                failures=settings.breaker_failures,
                window_calls=max(DEFAULT_WINDOW_CALLS, 2 * settings.breaker_failures),
                cooldown_s=settings.breaker_cooldown_seconds,
                # A remote backend that leaves a call unanswered for a read timeout, answering
                # nothing else meanwhile, is stalled; a local one (SQLite waiting for its write
                # lock, a disk) is only busy.
                stall_s=prompt_calls.READ_SECONDS if url.startswith(REMOTE_SCHEMES) else None,
            )

        return cls(
            breaker("records", RecordsUnavailable, settings.records_url),
            breaker("storage", StorageUnavailable, settings.storage_url),
        )

    def records_port(self, port: R) -> R:
        """A kind of records behind the records breaker."""
        return guarded(port, self.records, always=RECORDS_ALWAYS, patient=RECORDS_PATIENT)

    def blob_store(self, port: BlobStore) -> BlobStore:
        """The media storage behind the storage breaker."""
        return guarded(
            port,
            self.storage,
            always=STORAGE_ALWAYS,
            exempt=STORAGE_EXEMPT,
            patient=STORAGE_PATIENT,
        )


def build_services(settings: Settings, *, with_dispatcher: bool = True) -> Services:
    """Every service over the configured backends. Opens no connection yet.

    ``with_dispatcher=False`` is for workers that only execute jobs (the Lambda handler). The
    records and the storage are reached through their circuit breakers (see Breakers).
    """
    breakers = Breakers.from_settings(settings)
    blobs = breakers.blob_store(
        open_blob_store(settings.storage_url, media_base_url=settings.media_base_url)
    )
    templates = build_catalog(settings, blobs)
    words = CachedWordLists(breakers.records_port(open_word_records(settings.records_url)))
    stats = BufferedStats(breakers.records_port(open_stats_records(settings.records_url)))
    metrics = Metrics()
    # Renders resolve visitors' clips (u-… ids) beside the brand's templates; the admin and the
    # pages see the brand's catalog only.
    clips = ClipCatalog(
        templates,
        blobs,
        cache_dir=settings.data_dir / "clip-cache",
        prepared_dir=settings.prepared_dir,
        spill_dir=settings.prepared_spill_dir,
        style_template=settings.upload_style_template,
        default_frame=settings.brand.default_frame,
        keep_uploads=settings.keep_uploads,
        max_gif_bytes=settings.brand.max_gif_bytes,
    )
    render = RenderService(
        catalog=clips,
        blobs=blobs,
        records=breakers.records_port(open_render_records(settings.records_url)),
        words=words,
        stats=stats,
        purge=open_cdn_purge(settings.cdn_purge_url),
        metrics=metrics,
        lease_seconds=settings.lease_seconds,
        brand=settings.brand,
    )
    if with_dispatcher:
        render.attach(
            open_dispatcher(
                settings.dispatch_url,
                render.execute,
                concurrency=settings.render_concurrency,
                max_queue=settings.queue_size,
            )
        )
    gallery = InMemoryGallery(
        breakers.records_port(open_gallery_records(settings.records_url)),
        refresh_s=settings.gallery_refresh_seconds,
        version_check_s=settings.gallery_version_check_seconds,
    )
    users = AdminUsers(breakers.records_port(open_user_records(settings.records_url)))
    uploads = UploadService(
        blobs=blobs,
        clips=clips,
        render=render,
        max_bytes=settings.upload_max_bytes,
        max_seconds=settings.upload_max_seconds,
        max_jobs=settings.upload_jobs or max(1, (settings.render_concurrency or _cpus()) // 2),
        incoming_max_bytes=settings.upload_incoming_max_bytes,
    )
    return Services(
        settings=settings,
        templates=templates,
        render=render,
        gallery=gallery,
        words=words,
        stats=stats,
        users=users,
        metrics=metrics,
        blocklist=Blocklist(blobs),
        admin_sessions=AdminSessions(users.records),
        login_limits=build_login_limits(settings, users),
        hits=HitLog(breakers.records_port(open_retention_records(settings.records_url))),
        reports=Reports(blobs),
        uploads=uploads,
    )


def _cpus() -> int:
    return os.cpu_count() or 1


def run_gc(settings: Settings, *, days: int, dry_run: bool) -> GcReport:
    """``loopmark gc``: what retention drops, deleted (see service.retention)."""
    services = build_services(settings, with_dispatcher=False)
    try:
        report = collect_garbage(
            render=services.render,
            retention=services.hits.records,
            gallery_keys={entry.key for entry in services.gallery.entries()},
            forget_admin_rows=lambda dry: services.users.records.forget_expired(dry_run=dry),
            data_dir=settings.data_dir,
            days=days,
            dry_run=dry_run,
            reports=services.reports,
        )
        report.uploads = services.uploads.collect_garbage(
            [settings.prepared_dir, settings.prepared_spill_dir], dry_run=dry_run
        )
        return report
    finally:
        services.close()


def build_render_service(settings: Settings, *, with_dispatcher: bool = True) -> RenderService:
    """The render service alone (benchmarks and tests that need nothing else)."""
    return build_services(settings, with_dispatcher=with_dispatcher).render


def build_admin_users(settings: Settings) -> AdminUsers:
    """The admin users alone (``loopmark admin create-user`` needs nothing else)."""
    return AdminUsers(open_user_records(settings.records_url))


def build_login_limits(settings: Settings, users: AdminUsers) -> LoginLimits:
    """Failed-login limits over the user records (``loopmark admin unlock`` needs nothing else)."""
    return LoginLimits(
        users.records,
        pair_limits=parse_limits(settings.login_rate_limit, "LOOPMARK_RATE_LIMIT_LOGIN"),
        address_limits=parse_limits(
            settings.login_address_rate_limit, "LOOPMARK_RATE_LIMIT_LOGIN_ADDRESS"
        ),
    )


def build_catalog(settings: Settings, blobs: BlobStore) -> TemplateCatalog:
    if settings.templates_source == "storage":
        return StoredTemplateCatalog(
            blobs,
            settings.template_cache_dir,
            settings.prepared_dir,
            spill_dir=settings.prepared_spill_dir,
            max_gif_bytes=settings.brand.max_gif_bytes,
        )
    return DirectoryTemplateCatalog(
        settings.templates_dir,
        settings.prepared_dir,
        spill_dir=settings.prepared_spill_dir,
        max_gif_bytes=settings.brand.max_gif_bytes,
    )


def open_templates_storage(settings: Settings) -> tuple[DirectoryTemplateCatalog, BlobStore]:
    """The template folder and the configured storage (``loopmark templates push``)."""
    blobs = open_blob_store(settings.storage_url, media_base_url=settings.media_base_url)
    catalog = DirectoryTemplateCatalog(
        settings.templates_dir, settings.prepared_dir, spill_dir=settings.prepared_spill_dir
    )
    return catalog, blobs


def setup_backends(settings: Settings) -> list[str]:
    """Create what the configured backends need (idempotent); returns what was set up."""
    blobs = open_blob_store(settings.storage_url, media_base_url=settings.media_base_url)
    blobs.setup()
    setup_all(settings.records_url)
    # The prepared folder may be read-only (artifacts baked into an image): only a missing one
    # is created here, and the spill folder beside the data is always writable.
    for folder in (settings.prepared_dir, settings.prepared_spill_dir):
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
    again = reapply_blocklist(settings)
    return [
        f"storage {settings.storage_url}",
        f"records {settings.records_url}",
        f"blocklist {len(marked_keys(blobs))} take-downs in storage, {len(again)} re-applied",
    ]


def reapply_blocklist(settings: Settings) -> list[str]:
    """Take down again the keys blocked in storage that the records lost (a restored database:
    see service.blocklist); the keys taken down again."""
    services = build_services(settings, with_dispatcher=False)
    try:
        return reapply(services.render.blobs, services.render)
    finally:
        services.close()
