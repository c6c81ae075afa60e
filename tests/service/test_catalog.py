"""Template catalogs: from a folder, and pushed to storage for renderers without one."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopmark.app import create_app
from loopmark.errors import TemplateInvalid, UnknownTemplate
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.service import catalog as catalog_module
from loopmark.service.catalog import (
    INDEX_KEY,
    DirectoryTemplateCatalog,
    StoredTemplateCatalog,
    TemplateCatalog,
    push_templates,
)
from loopmark.storage import open_blob_store
from loopmark.storage.base import BlobStore
from loopmark.web.context import EXTENSION
from loopmark.web.server import warm_up
from tests.paths import replace_file


def make_blobs(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if kind == "s3":
        request.getfixturevalue("aws")
        store = open_blob_store("s3://loopmark-templates/site")
    else:
        store = open_blob_store(f"file://{tmp_path / 'media'}")
    store.setup()
    return store


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return make_blobs(request.param, request, tmp_path)


@pytest.fixture
def folder_catalog(
    tmp_path: Path, workdir: Path, small: PreparedTemplate
) -> DirectoryTemplateCatalog:
    templates = tmp_path / "templates"
    shutil.copytree(workdir / "templates" / "small", templates / "small")
    shutil.copytree(workdir / "templates" / "small", templates / "hidden")
    toml = templates / "hidden" / "template.toml"
    toml.write_text("enabled = false\n" + toml.read_text())
    return DirectoryTemplateCatalog(templates, workdir / "prepared")


@pytest.fixture(params=["dir", "local", "s3"])
def catalog(
    request: pytest.FixtureRequest, folder_catalog: DirectoryTemplateCatalog, tmp_path: Path
) -> TemplateCatalog:
    if request.param == "dir":
        return folder_catalog
    blobs = make_blobs(request.param, request, tmp_path)
    push_templates(folder_catalog, blobs)
    return StoredTemplateCatalog(blobs, tmp_path / "cache", tmp_path / "lambda-prepared")


def test_catalog_contract(catalog: TemplateCatalog, small: PreparedTemplate) -> None:
    template = catalog.get("small")
    assert template.version == small.template.version
    assert [t.id for t in catalog.all()] == ["small"]
    assert {t.id for t in catalog.all(enabled_only=False)} == {"small", "hidden"}
    with pytest.raises(UnknownTemplate):
        catalog.get("hidden")
    assert catalog.get("hidden", enabled_only=False).id == "hidden"
    for missing in ("nope", "../small", "SMALL"):
        with pytest.raises(UnknownTemplate):
            catalog.get(missing)
    prepared = catalog.prepared(template)
    assert np.array_equal(prepared.indices, small.indices)
    assert np.array_equal(prepared.palette, small.palette)
    assert catalog.prepared(template) is prepared  # held open, not reloaded


def test_pushed_templates_are_downloaded_not_prepared_again(
    folder_catalog: DirectoryTemplateCatalog, blobs: BlobStore, tmp_path: Path
) -> None:
    push_templates(folder_catalog, blobs, ["small"])
    assert blobs.exists(INDEX_KEY)
    stored = StoredTemplateCatalog(blobs, tmp_path / "cache", tmp_path / "lambda-prepared")
    template = stored.get("small")
    prepared = stored.prepared(template)
    # The artifacts came from storage: the folder holds exactly the pushed files.
    assert (prepared.folder / "meta.json").is_file()
    assert prepared.folder.is_relative_to(tmp_path / "lambda-prepared")
    with pytest.raises(UnknownTemplate):
        stored.get("hidden")  # not pushed


def test_directory_catalog_sees_edits(folder_catalog: DirectoryTemplateCatalog) -> None:
    before = folder_catalog.get("small")
    toml = folder_catalog.templates_dir / "small" / "template.toml"
    # Renamed in, as every writer here does (the admin, the CLI): seen at once.
    replace_file(toml, toml.read_text().replace('name = "Small"', 'name = "Renamed"'))
    after = folder_catalog.get("small")
    assert after.name == "Renamed"
    assert after.version == before.version  # the name does not change the frames


def test_directory_catalog_sees_a_file_edited_in_place(
    folder_catalog: DirectoryTemplateCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_module, "FILES_RECHECK_SECONDS", 0.05)
    assert folder_catalog.get("small").name == "Small"
    toml = folder_catalog.templates_dir / "small" / "template.toml"
    toml.write_text(toml.read_text().replace('name = "Small"', 'name = "Edited"'))
    time.sleep(0.06)
    assert folder_catalog.get("small").name == "Edited"


def tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make ``folder`` look unwritable (the tests run as root, who could write anyway)."""
    real_access = os.access

    def access(path: Any, mode: int, **kwargs: Any) -> bool:
        if mode & os.W_OK and Path(path).is_relative_to(folder):
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_a_read_only_prepared_dir_is_read_and_what_it_lacks_spills(
    folder_catalog: DirectoryTemplateCatalog,
    blobs: BlobStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    baked = folder_catalog.prepared_dir  # holds "small", as an image carries its templates
    read_only(monkeypatch, baked)
    before = tree(baked)
    spill = tmp_path / "spill"
    template = folder_catalog.get("small")
    for catalog in (
        DirectoryTemplateCatalog(folder_catalog.templates_dir, baked, spill_dir=spill),
        StoredTemplateCatalog(blobs, tmp_path / "cache", baked, spill_dir=spill),
    ):
        if isinstance(catalog, StoredTemplateCatalog):
            push_templates(folder_catalog, blobs, ["small"])
        assert catalog.prepared(template).folder.is_relative_to(baked)
    assert tree(baked) == before and not spill.exists()

    # A version the read-only folder lacks is prepared (or downloaded) under the spill folder.
    empty = tmp_path / "empty-baked"
    empty.mkdir()
    read_only(monkeypatch, empty)
    folder_only = DirectoryTemplateCatalog(folder_catalog.templates_dir, empty, spill_dir=spill)
    assert folder_only.prepared(template).folder.is_relative_to(spill)
    stored = StoredTemplateCatalog(blobs, tmp_path / "cache2", empty, spill_dir=tmp_path / "s2")
    assert stored.prepared(stored.get("small")).folder.is_relative_to(tmp_path / "s2")
    assert list(empty.iterdir()) == []


def test_start_up_rebuilds_bad_artifacts_and_leaves_out_what_cannot_be_prepared(
    tmp_path: Path, workdir: Path, small: PreparedTemplate, caplog: pytest.LogCaptureFixture
) -> None:
    templates, prepared_dir = tmp_path / "templates", tmp_path / "prepared"
    shutil.copytree(small.template.folder, templates / "small")
    shutil.copytree(small.template.folder, templates / "broken")
    (templates / "broken" / small.template.source.name).write_bytes(b"not a video" * 1000)
    baked = prepared_dir / "small" / small.folder.name
    shutil.copytree(small.folder, baked)
    os.truncate(baked / "frames.npy", 1000)  # truncated while a previous server ran
    app = create_app(
        {
            "TESTING": True,
            "LOOPMARK_DATA_DIR": str(tmp_path),
            "LOOPMARK_TEMPLATES_DIR": str(templates),
            "LOOPMARK_PREPARED_DIR": str(prepared_dir),
            "LOOPMARK_JSON_LOGS": "off",
        }
    )
    try:
        assert warm_up(app) == ["small"]  # started, without the broken one
        assert "frames.npy does not match its checksum" in caplog.text
        assert "template 'broken' cannot be prepared" in caplog.text
        catalog = app.extensions[EXTENSION].templates
        assert np.array_equal(catalog.prepared(catalog.get("small")).frames, small.frames)
        assert [t.id for t in catalog.all()] == ["small"]
        assert {t.id for t in catalog.all(enabled_only=False)} == {"small", "broken"}
        caplog.clear()
        with pytest.raises(TemplateInvalid, match="cannot be prepared"):
            catalog.prepared(catalog.get("broken"))  # at once: not tried again for a while
        assert "cannot be prepared" not in caplog.text
        # A folder whose settings do not even load is left out of the listing too.
        replace_file(templates / "broken" / "template.toml", "not = [toml")
        assert [t.id for t in catalog.all()] == ["small"]
        assert "template broken left out" in caplog.text
    finally:
        app.extensions[EXTENSION].close()
