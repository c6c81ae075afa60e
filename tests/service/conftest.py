"""Render-service fixtures: real adapters (local files, SQLite; S3 and DynamoDB on moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopmark.composition import build_render_service, setup_backends
from loopmark.config import Settings
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.service.catalog import DirectoryTemplateCatalog, push_templates
from loopmark.service.render_service import RenderService
from loopmark.storage import open_blob_store


def make_settings(tmp_path: Path, workdir: Path, **overrides: str) -> Settings:
    """Fresh media and records under tmp_path; the session's templates and prepared cache
    (LOOPMARK_DATA_DIR/prepared) are shared so no test prepares the small template again."""
    env = {
        "LOOPMARK_DATA_DIR": str(workdir),
        "LOOPMARK_TEMPLATES_DIR": str(workdir / "templates"),
        "LOOPMARK_STORAGE": f"file://{tmp_path / 'media'}",
        "LOOPMARK_RECORDS": f"sqlite:///{tmp_path / 'loopmark.db'}",
        "LOOPMARK_RENDER_CONCURRENCY": "2",
        **overrides,
    }
    return Settings.from_env(env)


@pytest.fixture
def settings(tmp_path: Path, workdir: Path, small: PreparedTemplate) -> Settings:
    return make_settings(tmp_path, workdir)


@pytest.fixture
def service(settings: Settings) -> Iterator[RenderService]:
    setup_backends(settings)
    service = build_render_service(settings)
    yield service
    service.dispatcher.close()


def set_up_aws_site(site_env: dict[str, str], templates: Path, prepared: Path) -> Settings:
    """Backends created and the templates pushed for a site over ``site_env`` (S3, DynamoDB):
    what `loopmark setup` and `loopmark templates push` do before a deployment renders."""
    settings = Settings.from_env(site_env)
    setup_backends(settings)
    blobs = open_blob_store(settings.storage_url)
    push_templates(DirectoryTemplateCatalog(templates, prepared), blobs)
    return settings
