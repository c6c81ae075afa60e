"""The services a request reaches, owned by the app (``app.extensions["loopmark"]``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import current_app

from loopmark.config import Settings
from loopmark.records.gallery import open_gallery_records
from loopmark.service.factory import build_render_service
from loopmark.service.render_service import RenderService
from loopmark.site.gallery import InMemoryGallery, gallery_timing

EXTENSION = "loopmark"


@dataclass
class SiteServices:
    settings: Settings
    render: RenderService
    gallery: InMemoryGallery

    @classmethod
    def build(cls, settings: Settings, env: Mapping[str, str] | None = None) -> SiteServices:
        """``env``: LOOPMARK_GALLERY_* timings (the defaults when absent)."""
        refresh_s, version_check_s = gallery_timing(env or {})
        gallery = InMemoryGallery(
            open_gallery_records(settings.records_url),
            refresh_s=refresh_s,
            version_check_s=version_check_s,
        )
        return cls(settings=settings, render=build_render_service(settings), gallery=gallery)

    def close(self) -> None:
        """Stop the render pool, write the last statistics, close the records (shutdown, tests)."""
        self.render.close()
        self.gallery.close()


def services() -> SiteServices:
    """The current app's services (inside a request or app context)."""
    return current_app.extensions[EXTENSION]
