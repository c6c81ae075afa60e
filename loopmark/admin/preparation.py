"""Templates prepared in the background for the admin: an upload or an edit that changes the
frames returns at once, and the template's page polls ``state`` until it is ready or failed.

An edit is prepared *before* it is written: template.toml changes only once the new frames
exist, so visitors keep the current version meanwhile and never wait for the new one (a failed
preparation leaves the template as it was, with the reason shown to the admin).

One preparation runs at a time per process (a lock: the renders keep the other core), each in a
daemon thread; preparing is idempotent and written atomically by the renderer, so a process that
stops mid-way leaves nothing half-done, and the next look at the template starts it again. State
lives in this process's memory: what survives a restart is the template folder and its prepared
artifacts, from which ``state`` is derived again (an edit still being prepared is lost then).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from flask import Flask, current_app

from loopmark.admin.template_files import write_template_file
from loopmark.errors import LoopmarkError, TemplateInvalid, UnknownTemplate
from loopmark.renderer.prepare import is_prepared, prepared_version_folder
from loopmark.renderer.templates import Template, parse_template
from loopmark.service.catalog import DirectoryTemplateCatalog

log = logging.getLogger(__name__)

EXTENSION = "loopmark.admin.preparations"
State = Literal["preparing", "ready", "failed"]


@dataclass(frozen=True)
class Preparation:
    state: State
    reason: str = ""


class Preparations:
    """Background preparations of one catalog's templates, by template id."""

    def __init__(self, catalog: DirectoryTemplateCatalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()
        self._running: set[str] = set()
        self._failed: dict[str, str] = {}

    def start(self, template_id: str, *, remove_on_failure: bool = False) -> bool:
        """Prepare the template's current version in the background (once at a time per id).
        ``remove_on_failure``: a new upload whose video does not decode is deleted again."""

        def prepare() -> None:
            self.catalog.prepared(self.catalog.get(template_id, enabled_only=False))

        return self._start(template_id, prepare, remove_on_failure)

    def start_edit(self, template: Template, data: dict[str, Any]) -> bool:
        """Prepare the frames of ``data`` (template.toml's new table), then write it; False when
        this template is being prepared already (the edit is not taken)."""

        def prepare_then_write() -> None:
            self.catalog.prepared(parse_template(template.id, template.folder, data))
            current = self.catalog.get(template.id, enabled_only=False)
            if current.raw != template.raw:
                raise TemplateInvalid(
                    "the template was changed by someone else meanwhile: make your changes again"
                )
            write_template_file(template.folder, data)

        return self._start(template.id, prepare_then_write, False)

    def _start(self, template_id: str, job: Callable[[], None], remove_on_failure: bool) -> bool:
        with self._lock:
            if template_id in self._running:
                return False
            self._running.add(template_id)
            self._failed.pop(template_id, None)
        thread = threading.Thread(
            target=self._run,
            args=(template_id, job, remove_on_failure),
            name=f"admin-prepare-{template_id}",
            daemon=True,
        )
        thread.start()
        return True

    def running(self, template_id: str) -> bool:
        with self._lock:
            return template_id in self._running

    def _run(self, template_id: str, job: Callable[[], None], remove_on_failure: bool) -> None:
        reason = ""
        try:
            with self._one_at_a_time:
                job()
        except LoopmarkError as exc:
            reason = exc.reason
        except Exception as exc:  # a thread must not die silently: the page waits on it
            log.exception("template %s: preparation failed", template_id)
            reason = f"{type(exc).__name__}: {exc}"
        if reason and remove_on_failure:
            shutil.rmtree(self.catalog.templates_dir / template_id, ignore_errors=True)
        with self._lock:
            self._running.discard(template_id)
            if reason:
                self._failed[template_id] = reason
        if reason:
            log.warning("template %s could not be prepared: %s", template_id, reason)

    def state(self, template_id: str) -> Preparation:
        """Where the template stands; a version nobody prepares yet (after a restart, an edit
        by hand) is started now."""
        with self._lock:
            if template_id in self._running:
                return Preparation("preparing")
            failed = self._failed.get(template_id)
        if failed is not None:
            return Preparation("failed", failed)
        try:
            template = self.catalog.get(template_id, enabled_only=False)
        except UnknownTemplate:
            return Preparation("failed", "This template no longer exists.")
        except LoopmarkError as exc:
            return Preparation("failed", exc.reason)
        if self.is_ready(template):
            return Preparation("ready")
        self.start(template_id)
        return Preparation("preparing")

    def is_ready(self, template: Template) -> bool:
        """Whether this version's artifacts are on disk (loading them is quick)."""
        catalog = self.catalog
        return is_prepared(
            prepared_version_folder(template, catalog.prepared_dir, catalog.spill_dir)
        )

    def take_failure(self, template_id: str) -> str | None:
        """The reason the last preparation failed (once: it is forgotten)."""
        with self._lock:
            return self._failed.pop(template_id, None)


def preparations(catalog: DirectoryTemplateCatalog, app: Flask | None = None) -> Preparations:
    """The app's tracker (made on first use, for the catalog the app serves)."""
    app = app or current_app
    with _CREATE_LOCK:
        found = app.extensions.get(EXTENSION)
        if not isinstance(found, Preparations) or found.catalog is not catalog:
            found = Preparations(catalog)
            app.extensions[EXTENSION] = found
    return found


_CREATE_LOCK = threading.Lock()
