"""Templates prepared in the background for the admin: an upload or an edit that changes the
frames returns at once, and the template's page polls ``state`` until it is ready or failed.

An edit is prepared *before* it is written: template.toml changes only once the new frames
exist, so visitors keep the current version meanwhile and never wait for the new one (a failed
preparation leaves the template as it was, with the reason shown to the admin).

One preparation runs at a time per process (a lock: the renders keep the other core), each in a
daemon thread; preparing is idempotent and written atomically by the renderer, so a process that
stops mid-way leaves nothing half-done.

*Surviving a restart.* A preparation is also written down, in the template's folder
(``.preparation.json``, a dot-file: never pushed, never read as a template): which process runs
it, whether a failed upload is removed again, an edit's new table and the table it was made
from, and, once it failed, why. The next look at the template (its page, its state poll, the
list) reads it: a preparation whose process is gone (a restart, a crash, a deploy) is started
again here — an edit too, so the admin's saved changes are not lost — one that another live
process runs is reported as preparing, and a failure is shown once, whichever process saw it.
Without the file, ``state`` is derived from the prepared artifacts as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from flask import Flask, current_app

from loopmark.admin.template_files import write_template_file
from loopmark.errors import N_, LoopmarkError, TemplateInvalid, UnknownTemplate
from loopmark.renderer.prepare import is_prepared, prepared_version_folder
from loopmark.renderer.templates import Template, parse_template
from loopmark.service.catalog import PREPARE_RETRY_SECONDS, DirectoryTemplateCatalog

log = logging.getLogger(__name__)

EXTENSION = "loopmark.admin.preparations"
State = Literal["preparing", "ready", "failed"]
MARKER_FILE = ".preparation.json"
# A preparation another machine runs (a shared templates folder) is taken over once its marker is
# this old: preparing a template takes seconds to a minute or two.
FOREIGN_STALE_SECONDS = 30 * 60
# This process, told apart from an earlier one that had the same pid (a container restarted).
_PROCESS = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
# Markers this process is running now, across every tracker (an app made twice in one process).
_ACTIVE: set[Path] = set()
_ACTIVE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Preparation:
    """Where a preparation stands; a failure's ``reason`` in English, and (when the error was
    marked for translation) its ``message_id`` and ``params``, for the page's language."""

    state: State
    reason: str = ""
    message_id: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def failure(cls, exc: LoopmarkError) -> Preparation:
        return cls("failed", exc.reason, exc.message_id, dict(exc.params))


class Preparations:
    """Background preparations of one catalog's templates, by template id."""

    def __init__(self, catalog: DirectoryTemplateCatalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()
        self._running: set[str] = set()
        self._failed: dict[str, Preparation] = {}

    def start(self, template_id: str, *, remove_on_failure: bool = False) -> bool:
        """Prepare the template's current version in the background (once at a time per id).
        ``remove_on_failure``: a new upload whose video does not decode is deleted again."""

        def prepare() -> None:
            self.catalog.prepared(self.catalog.get(template_id, enabled_only=False))

        marker = {"remove_on_failure": remove_on_failure}
        return self._start(template_id, prepare, remove_on_failure, marker)

    def start_edit(self, template: Template, data: dict[str, Any]) -> bool:
        """Prepare the frames of ``data`` (template.toml's new table), then write it; False when
        this template is being prepared already (the edit is not taken)."""
        base = template.raw

        def prepare_then_write() -> None:
            self.catalog.prepared(parse_template(template.id, template.folder, data))
            current = self.catalog.get(template.id, enabled_only=False)
            if current.raw != base:
                raise TemplateInvalid(_CHANGED)
            write_template_file(template.folder, data)

        marker = {"edit": data, "base": base}
        return self._start(template.id, prepare_then_write, False, marker)

    def _start(
        self,
        template_id: str,
        job: Callable[[], None],
        remove_on_failure: bool,
        marker: dict[str, Any],
    ) -> bool:
        with self._lock:
            if template_id in self._running:
                return False
            self._running.add(template_id)
            self._failed.pop(template_id, None)
        path = self._marker_path(template_id)
        with _ACTIVE_LOCK:
            _ACTIVE.add(path)
        try:
            _write_marker(path, {**marker, "state": "preparing", "owner": _PROCESS,
                                 "started_at": time.time()})  # fmt: skip
        except (OSError, TypeError, ValueError) as exc:  # the folder went, or a table JSON lacks
            log.warning("template %s: preparation not written down: %s", template_id, exc)
        thread = threading.Thread(
            target=self._run,
            args=(template_id, job, remove_on_failure),
            name=f"admin-prepare-{template_id}",
            daemon=True,
        )
        thread.start()
        return True

    def _marker_path(self, template_id: str) -> Path:
        return self.catalog.templates_dir / template_id / MARKER_FILE

    def running(self, template_id: str) -> bool:
        with self._lock:
            return template_id in self._running

    def _run(self, template_id: str, job: Callable[[], None], remove_on_failure: bool) -> None:
        failed: Preparation | None = None
        try:
            with self._one_at_a_time:
                job()
        except LoopmarkError as exc:
            failed = Preparation.failure(exc)
        except Exception as exc:  # a thread must not die silently: the page waits on it
            log.exception("template %s: preparation failed", template_id)
            failed = Preparation("failed", f"{type(exc).__name__}: {exc}")
        path = self._marker_path(template_id)
        if failed is not None and remove_on_failure:
            shutil.rmtree(self.catalog.templates_dir / template_id, ignore_errors=True)
        elif failed is not None:  # kept for whichever process the admin asks next
            _update_marker(path, state="failed", reason=failed.reason, failed_at=time.time(),
                           message_id=failed.message_id, params=dict(failed.params))  # fmt: skip
        else:
            path.unlink(missing_ok=True)
        with _ACTIVE_LOCK:
            _ACTIVE.discard(path)
        with self._lock:
            self._running.discard(template_id)
            if failed is not None:
                self._failed[template_id] = failed
        if failed is not None:
            log.warning("template %s could not be prepared: %s", template_id, failed.reason)

    def state(self, template_id: str) -> Preparation:
        """Where the template stands; a version nobody prepares yet (after a restart, an edit
        by hand) is started now, and so is a preparation whose process is gone."""
        with self._lock:
            if template_id in self._running:
                return Preparation("preparing")
            failed = self._failed.get(template_id)
        if failed is not None:
            return failed
        written = self._written_state(template_id)
        if written is not None:
            return written
        try:
            template = self.catalog.get(template_id, enabled_only=False)
        except UnknownTemplate:
            return Preparation("failed", _GONE, _GONE)
        except LoopmarkError as exc:
            return Preparation.failure(exc)
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

    def busy(self, template_id: str) -> bool:
        """Whether a preparation of this template is under way or written down (to resume or
        to report): then its page is the waiting page, which looks again."""
        with self._lock:
            if template_id in self._running:
                return True
        marker = _read_marker(self._marker_path(template_id))
        return marker is not None and marker.get("state") == "preparing"

    def take_failure(self, template_id: str) -> Preparation | None:
        """How the last preparation failed (once: it is forgotten, here and on disk)."""
        with self._lock:
            failed = self._failed.pop(template_id, None)
        path = self._marker_path(template_id)
        marker = _read_marker(path)
        if marker is not None and marker.get("state") == "failed":
            path.unlink(missing_ok=True)
            failed = failed or _failure_of(marker)
        return failed

    def _written_state(self, template_id: str) -> Preparation | None:
        """The state the template's marker gives, resuming a preparation whose process is
        gone; None without a marker (or with one past use)."""
        path = self._marker_path(template_id)
        marker = _read_marker(path)
        if marker is None:
            return None
        if marker.get("state") == "failed":
            failed_at = marker.get("failed_at")
            retry = (
                "edit" not in marker  # an edit's failure is said once, on the template's page
                and isinstance(failed_at, int | float)
                and time.time() - failed_at >= PREPARE_RETRY_SECONDS
            )
            if not retry:
                return _failure_of(marker)
            path.unlink(missing_ok=True)  # another process's old failure: try again, as it would
            return None
        if _owner_alive(path, marker):
            return Preparation("preparing")
        # Claimed by renaming the marker: of two processes looking at once, one resumes it.
        claimed = path.with_name(f".template-claim-{uuid.uuid4().hex[:8]}.json")  # gc: a leftover
        try:
            path.rename(claimed)
        except FileNotFoundError:
            return Preparation("preparing")  # another process took it over just now
        if _read_marker(claimed) != marker:
            # Another process claimed it between our read and our rename and wrote its own
            # marker: that is what we took. Put it back; it is that process's preparation.
            with contextlib.suppress(OSError):
                claimed.rename(path)
            return Preparation("preparing")
        claimed.unlink(missing_ok=True)
        log.warning("template %s: resuming a preparation its process left", template_id)
        edit = marker.get("edit")
        if isinstance(edit, dict):
            try:
                template = self.catalog.get(template_id, enabled_only=False)
            except LoopmarkError as exc:
                return Preparation.failure(exc)
            if template.raw != marker.get("base"):
                return Preparation("failed", _CHANGED, _CHANGED)
            self.start_edit(template, edit)
        else:
            self.start(template_id, remove_on_failure=bool(marker.get("remove_on_failure")))
        return Preparation("preparing")


_CHANGED = N_("The template was changed by someone else meanwhile: make your changes again.")
_GONE = N_("This template no longer exists.")


def _failure_of(marker: dict[str, Any]) -> Preparation:
    params = marker.get("params")
    return Preparation(
        "failed",
        str(marker.get("reason") or ""),
        str(marker.get("message_id") or ""),
        params if isinstance(params, dict) else {},
    )


def _owner_alive(path: Path, marker: dict[str, Any]) -> bool:
    """Whether the process that wrote ``marker`` still runs its preparation: this process (if
    it has it under way), another live process on this machine, or another machine's recently."""
    owner = str(marker.get("owner", ""))
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if owner == _PROCESS:
        with _ACTIVE_LOCK:
            return path in _ACTIVE
    if host != socket.gethostname():
        started = marker.get("started_at")
        fresh = isinstance(started, int | float) and time.time() - started < FOREIGN_STALE_SECONDS
        return fresh
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False  # this pid, another token: an earlier process (a restarted container)
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s unreadable, ignored: %s", path, exc)
        return None
    return found if isinstance(found, dict) else None


def _write_marker(path: Path, marker: dict[str, Any]) -> None:
    """Replace the marker atomically (a ".template-" staging file: gc removes a leftover)."""
    text = json.dumps(marker, ensure_ascii=False, sort_keys=True)
    fd, staging = tempfile.mkstemp(prefix=".template-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def _update_marker(path: Path, **changes: Any) -> None:
    marker = _read_marker(path) or {}
    try:
        _write_marker(path, {**marker, **changes})
    except (OSError, TypeError, ValueError) as exc:
        log.warning("%s not written: %s", path, exc)


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
