"""Wiring: build the render service and its adapters from Settings. The one place that looks at
backend URLs; everything else speaks to the ports."""

from __future__ import annotations

from loopmark.config import Settings
from loopmark.dispatch import open_dispatcher
from loopmark.records import open_render_records, setup_all
from loopmark.records.stats import open_stats_records
from loopmark.records.words import open_word_records
from loopmark.service.catalog import (
    DirectoryTemplateCatalog,
    StoredTemplateCatalog,
    TemplateCatalog,
)
from loopmark.service.metrics import Metrics
from loopmark.service.purge import open_cdn_purge
from loopmark.service.render_service import RenderService
from loopmark.service.stats_buffer import BufferedStats
from loopmark.service.words import CachedWordLists
from loopmark.storage import open_blob_store
from loopmark.storage.base import BlobStore


def build_render_service(settings: Settings, *, with_dispatcher: bool = True) -> RenderService:
    """A render service over the configured backends. Opens no connection yet.

    ``with_dispatcher=False`` is for workers that only execute jobs (the Lambda handler).
    """
    blobs = open_blob_store(settings.storage_url, media_base_url=settings.media_base_url)
    service = RenderService(
        catalog=build_catalog(settings, blobs),
        blobs=blobs,
        records=open_render_records(settings.records_url),
        words=CachedWordLists(open_word_records(settings.records_url)),
        stats=BufferedStats(open_stats_records(settings.records_url)),
        purge=open_cdn_purge(settings.cdn_purge_url),
        metrics=Metrics(),
        lease_seconds=settings.lease_seconds,
    )
    if with_dispatcher:
        service.attach(
            open_dispatcher(
                settings.dispatch_url,
                service.execute,
                concurrency=settings.render_concurrency,
                max_queue=settings.queue_size,
            )
        )
    return service


def build_catalog(settings: Settings, blobs: BlobStore) -> TemplateCatalog:
    if settings.templates_source == "storage":
        return StoredTemplateCatalog(blobs, settings.template_cache_dir, settings.prepared_dir)
    return DirectoryTemplateCatalog(settings.templates_dir, settings.prepared_dir)


def setup_backends(settings: Settings) -> list[str]:
    """Create what the configured backends need (idempotent); returns what was set up."""
    blobs = open_blob_store(settings.storage_url, media_base_url=settings.media_base_url)
    blobs.setup()
    setup_all(settings.records_url)
    settings.prepared_dir.mkdir(parents=True, exist_ok=True)
    return [f"storage {settings.storage_url}", f"records {settings.records_url}"]
