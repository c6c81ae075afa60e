"""Template catalogs: templates by id and their prepared artifacts, from a folder or from storage.

The folder catalog reads ``LOOPMARK_TEMPLATES_DIR`` and re-reads a template when a file of its
folder changes. The stored catalog is for renderers that have no template folder (AWS Lambda):
``loopmark templates push`` uploads each template and its prepared artifacts to the blob store
under ``templates/<id>/<version>/`` with an index, and the catalog downloads a version once and
keeps it on local disk, keyed by its version hash.

A template that cannot be loaded or prepared is never served: it is left out of the public
listing with an error in the log (the others still are), and asking for its preparation again
within PREPARE_RETRY_SECONDS fails at once instead of running FFmpeg for every request.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol

from loopmark.errors import (
    BackendUnavailable,
    LoopmarkError,
    StorageUnavailable,
    TemplateInvalid,
    UnknownTemplate,
)
from loopmark.renderer.palette_groups import PaletteTrial
from loopmark.renderer.prepare import (
    PreparedTemplate,
    is_prepared,
    prepare_template,
    prepared_folder_name,
    prepared_version_folder,
    recorded_palette_trial,
    tuned_stabilise_distance,
)
from loopmark.renderer.templates import (
    TEMPLATE_FILE,
    TEMPLATE_ID_PATTERN,
    Template,
    iter_template_ids,
    load_template,
)
from loopmark.storage.base import BlobStore, validate_key

# Prepared templates held in memory (read, not mapped: about 14 MB for a 480 px, 2 s template).
PREPARED_CACHE_SIZE = 16
# A template version that failed to prepare is tried again after this long, not on every request.
PREPARE_RETRY_SECONDS = 60.0
INDEX_KEY = "templates/index.json"
INDEX_REFRESH_SECONDS = 30.0  # a pushed template reaches warm renderers within this bound
FILES_RECHECK_SECONDS = 1.0  # a template file edited in place is seen within this bound
# A render of a template the start's warm-up is still preparing waits at most this long for it
# (then prepares it itself).
WARM_UP_WAIT_SECONDS = 300.0
# How much lower a warm-up's preparing processes run than the server (os.nice increment).
WARM_UP_NICENESS = 5

log = logging.getLogger(__name__)


class TemplateCatalog(Protocol):
    def get(self, template_id: str, *, enabled_only: bool = True) -> Template:
        """The template with this id; UnknownTemplate if missing (or disabled)."""
        ...

    def all(self, *, enabled_only: bool = True) -> list[Template]: ...

    def prepared(self, template: Template) -> PreparedTemplate:
        """The prepared artifacts of this template version."""
        ...

    def prepared_file(self, template: Template, folder_name: str, name: str) -> Path:
        """A file of a prepared version (``preview.mp4``, ``poster.jpg``): the current version's
        (prepared on first use), or an older one's that a cached page may still name (served
        while its files remain; the path may not exist)."""
        ...

    def warming(self, template: Template) -> bool:
        """Whether a start's warm-up is still preparing this version (``warm_up``): a caller
        that must not wait for it (a visitor's request) says so and asks again later."""
        ...

    def warm_up(self, *, workers: int, listed: Callable[[], None] | None = None) -> list[str]:
        """Prepare every enabled template, ``workers`` at a time, each ready for renders as soon
        as it is; returns the ids ready. Failures are logged and left out. ``listed`` is called
        once every template to prepare is marked ``warming`` (a caller in another thread waits
        for that before it lets renders in)."""
        ...


def prepared_file(
    catalog: TemplateCatalog,
    prepared_dir: Path,
    spill_dir: Path | None,
    template: Template,
    folder_name: str,
    name: str,
) -> Path:
    """:meth:`TemplateCatalog.prepared_file` for a catalog that prepares into ``prepared_dir``
    (or, when that is read-only, ``spill_dir``)."""
    if folder_name == prepared_folder_name(template.version):
        return catalog.prepared(template).folder / name
    path = prepared_dir / template.id / folder_name / name
    if spill_dir is not None and not path.is_file():
        return spill_dir / template.id / folder_name / name
    return path


class _PreparedCache:
    """Prepared templates by (id, version), least recently used dropped first; and the versions
    that failed to prepare lately (not a backend outage: that passes)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str], PreparedTemplate] = OrderedDict()
        self._failed: dict[tuple[str, str], tuple[float, str]] = {}
        self._warming: dict[tuple[str, str], threading.Event] = {}

    def get_or_build(
        self, template: Template, build: Callable[[], PreparedTemplate]
    ) -> PreparedTemplate:
        cache_key = (template.id, template.version)
        with self._lock:
            warming = self._warming.get(cache_key)
        if warming is not None:
            # A warm-up is preparing it (in another process): wait for that rather than
            # prepare it a second time (a worker's render; its lease keeper beats meanwhile).
            warming.wait(WARM_UP_WAIT_SECONDS)
        with self._lock:
            found = self._items.get(cache_key)
            if found is not None:
                self._items.move_to_end(cache_key)
                return found
            failure = self._failed.get(cache_key)
        if failure is not None and self.clock() - failure[0] < PREPARE_RETRY_SECONDS:
            raise TemplateInvalid(failure[1])
        try:
            prepared = build()
        except BackendUnavailable:
            raise
        except Exception as exc:
            why = exc.reason if isinstance(exc, LoopmarkError) else f"{type(exc).__name__}: {exc}"
            reason = f"template {template.id!r} cannot be prepared: {why}"
            log.error("%s (version %s)", reason, template.version, exc_info=exc)
            with self._lock:
                self._failed[cache_key] = (self.clock(), reason)
            raise
        with self._lock:
            self._failed.pop(cache_key, None)
            self._items[cache_key] = prepared
            while len(self._items) > PREPARED_CACHE_SIZE:
                self._items.popitem(last=False)
        return prepared

    def start_warming(self, template: Template) -> None:
        with self._lock:
            self._warming.setdefault((template.id, template.version), threading.Event())

    def stop_warming(self, template: Template) -> None:
        with self._lock:
            event = self._warming.pop((template.id, template.version), None)
        if event is not None:
            event.set()

    def warming(self, template: Template) -> bool:
        with self._lock:
            return (template.id, template.version) in self._warming

    def fail(self, template: Template, reason: str) -> None:
        """Remember that this version failed to prepare (elsewhere: a warm-up's child)."""
        with self._lock:
            self._failed[(template.id, template.version)] = (self.clock(), reason)

    def failed_lately(self, template: Template) -> bool:
        """Whether this version failed to prepare within PREPARE_RETRY_SECONDS."""
        with self._lock:
            failure = self._failed.get((template.id, template.version))
        return failure is not None and self.clock() - failure[0] < PREPARE_RETRY_SECONDS


def servable(
    templates: Iterable[tuple[str, Callable[[], Template]]], prepared: _PreparedCache
) -> list[Template]:
    """The templates that load and did not fail to prepare lately; the others are logged."""
    found = []
    for template_id, load in templates:
        try:
            template = load()
        except TemplateInvalid as exc:
            log.error("template %s left out: %s", template_id, exc.reason)
            continue
        if not prepared.failed_lately(template):
            found.append(template)
    return found


def warm_up(
    catalog: TemplateCatalog,
    cache: _PreparedCache,
    *,
    workers: int,
    remote: Callable[[Template], Callable[[], None] | None],
    listed: Callable[[], None] | None = None,
) -> list[str]:
    """:meth:`TemplateCatalog.warm_up`: load the enabled templates ``remote`` says need no work
    (prepared on disk), mark the others as warming (a visitor's render of one is answered "not
    ready yet" until it is ready), call ``listed``, prepare them with ``remote(template)`` in a
    pool of ``workers`` child processes, and load each into the catalog as its child finishes.
    Returns the ids ready, in the catalog's order."""
    try:
        templates = catalog.all()
    except LoopmarkError as exc:
        log.error("cannot list templates to prepare: %s", exc.reason)
        templates = []
    ready: set[str] = set()

    def load(template: Template) -> None:
        cache.stop_warming(template)  # prepared on disk now: loading it is quick
        try:
            catalog.prepared(template)
        except Exception as exc:  # start-up goes on without it (the cache logged the cause)
            log.error("template %s skipped: %s", template.id, getattr(exc, "reason", exc))
            return
        ready.add(template.id)

    try:
        jobs = [(template, remote(template)) for template in templates]
        pending = [(template, job) for template, job in jobs if job is not None]
        for template, _job in pending:
            cache.start_warming(template)
        # What is prepared on disk already is loaded (and verified) before ``listed``: a restart
        # serves its templates at once; only the missing ones are "getting ready".
        for template, job in jobs:
            if job is None:
                load(template)
        if listed is not None:
            listed()
        if pending:
            _prepare_side_by_side(pending, cache, load, workers)
    finally:
        for template in templates:
            cache.stop_warming(template)
    return [template.id for template in templates if template.id in ready]


def _prepare_side_by_side(
    jobs: list[tuple[Template, Callable[[], None]]],
    cache: _PreparedCache,
    load: Callable[[Template], None],
    workers: int,
) -> None:
    """Run each job in a child process (spawned: the parent has threads), loading each template
    as its job ends; a job that fails marks its template failed. Without a pool (no processes
    can be started), the jobs run here, one after another."""
    started = time.monotonic()
    try:
        pool = ProcessPoolExecutor(
            max_workers=max(1, min(workers, len(jobs))),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_yield_to_the_server,
        )
    except (OSError, ValueError) as exc:
        log.warning("no process pool for preparing templates (%s): one at a time here", exc)
        for template, job in jobs:
            _run_here(template, job, cache)
            load(template)
        return
    with pool:
        futures = {pool.submit(job): (template, job) for template, job in jobs}
        for future in as_completed(futures):
            template, job = futures[future]
            try:
                future.result()
            except BrokenProcessPool:  # a child died (out of memory?): try it here instead
                log.warning("template %s: its preparing process died; preparing here", template.id)
                _run_here(template, job, cache)
            except Exception as exc:  # the child's error, raised again here
                _remember_failure(cache, template, exc)
                cache.stop_warming(template)
                continue
            else:
                log.info(
                    "template %s prepared (%.1f s after the warm-up began)",
                    template.id,
                    time.monotonic() - started,
                )
            load(template)


def _run_here(template: Template, job: Callable[[], None], cache: _PreparedCache) -> None:
    """A job run in this process; a failure is remembered (the load that follows refuses)."""
    try:
        job()
    except Exception as exc:
        _remember_failure(cache, template, exc)


def _remember_failure(cache: _PreparedCache, template: Template, exc: Exception) -> None:
    why = exc.reason if isinstance(exc, LoopmarkError) else f"{type(exc).__name__}: {exc}"
    reason = f"template {template.id!r} cannot be prepared: {why}"
    log.error("%s (version %s)", reason, template.version)
    cache.fail(template, reason)


def _yield_to_the_server() -> None:
    """A warm-up child runs at a lower priority: the server it prepares for keeps answering."""
    try:
        os.nice(WARM_UP_NICENESS)
    except OSError:  # not allowed here: the same priority, then
        pass


def _prepare_in_child(
    templates_dir: str, template_id: str, version: str, prepared_dir: str, spill_dir: str | None
) -> None:
    """A warm-up's child process: prepare one template version onto disk (the parent loads
    it). A template edited since the parent listed it is left to the parent's next load."""
    template = load_template(Path(templates_dir), template_id)
    if template.version != version:
        return
    prepare_template(
        template, Path(prepared_dir), spill_dir=None if spill_dir is None else Path(spill_dir)
    )


class DirectoryTemplateCatalog:
    """Templates in a folder (the default, and what the admin edits)."""

    def __init__(
        self,
        templates_dir: Path,
        prepared_dir: Path,
        *,
        spill_dir: Path | None = None,
        max_gif_bytes: int | None = None,
    ) -> None:
        self.templates_dir = templates_dir
        self.prepared_dir = prepared_dir
        self.spill_dir = spill_dir  # where versions missing from a read-only prepared_dir go
        self.max_gif_bytes = max_gif_bytes  # the brand's GIF budget, unless a template has one
        self._lock = threading.Lock()
        self._templates: dict[str, _Loaded] = {}
        self._prepared = _PreparedCache()

    def get(self, template_id: str, *, enabled_only: bool = True) -> Template:
        template = self._load(template_id)
        if enabled_only and not template.enabled:
            raise UnknownTemplate(template_id)
        return template

    def all(self, *, enabled_only: bool = True) -> list[Template]:
        """Templates by id. The public listing (``enabled_only``) leaves out, with an error in
        the log, those that cannot be loaded or prepared; the admin's sees every one."""
        ids = iter_template_ids(self.templates_dir)
        if not enabled_only:
            return [self._load(tid) for tid in ids]
        loaders = [(tid, functools.partial(self._load, tid)) for tid in ids]
        return [t for t in servable(loaders, self._prepared) if t.enabled]

    def prepared(self, template: Template) -> PreparedTemplate:
        return self._prepared.get_or_build(
            template,
            lambda: prepare_template(template, self.prepared_dir, spill_dir=self.spill_dir),
        )

    def prepared_file(self, template: Template, folder_name: str, name: str) -> Path:
        return prepared_file(self, self.prepared_dir, self.spill_dir, template, folder_name, name)

    def warming(self, template: Template) -> bool:
        return self._prepared.warming(template)

    def tuned_stabilise_distance(self, template: Template) -> float | None:
        """The stabilise distance preparation tuned for this template's frames (what "automatic"
        means in the editor), from the prepared artifacts' manifest: this version's when it is
        tuned, else (template.toml overrides it) that of the same template without the override,
        when it was prepared before. None when it was never tuned. Never prepares anything."""
        automatic = (
            template
            if template.stabilise_distance is None
            else dataclasses.replace(template, stabilise_distance=None)
        )
        folder = prepared_version_folder(automatic, self.prepared_dir, self.spill_dir)
        return tuned_stabilise_distance(folder)

    def palette_trial(self, template: Template) -> PaletteTrial | None:
        """What preparation measured of a palette per span for this template's frames, from the
        prepared artifacts' manifest: this version's when it asks for spans, else (spans off)
        that of the same template with them on, when it was prepared before, so the editor shows
        what switching them on gives. None when never tried. Never prepares anything."""
        trial = (
            template
            if template.palette_spans
            else dataclasses.replace(template, palette_spans=True)
        )
        folder = prepared_version_folder(trial, self.prepared_dir, self.spill_dir)
        return recorded_palette_trial(folder)

    def warm_up(self, *, workers: int, listed: Callable[[], None] | None = None) -> list[str]:
        """Versions prepared on disk are loaded here at once; the others are prepared side by
        side in child processes (``workers`` at a time: preparation is CPU-bound Python and
        FFmpeg), each loaded as soon as its child finishes."""

        def remote(template: Template) -> Callable[[], None] | None:
            folder = prepared_version_folder(template, self.prepared_dir, self.spill_dir)
            if is_prepared(folder):
                return None
            spill = None if self.spill_dir is None else str(self.spill_dir)
            return functools.partial(
                _prepare_in_child,
                str(self.templates_dir),
                template.id,
                template.version,
                str(self.prepared_dir),
                spill,
            )

        return warm_up(self, self._prepared, workers=workers, remote=remote, listed=listed)

    def _load(self, template_id: str) -> Template:
        if not TEMPLATE_ID_PATTERN.match(template_id):
            raise UnknownTemplate(template_id)
        folder = os.path.join(self.templates_dir, template_id)
        # Any file of the folder changing (toml, source, frame) makes a new Template, and so a
        # new version, which keeps cache hits honest. The folder's own stat is checked on every
        # call (a file renamed in, as every writer here does, changes it); its files', a scan,
        # when that changed or at most once a second (a file edited in place, by hand).
        try:
            folder_mtime = os.stat(folder).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            raise UnknownTemplate(template_id) from None
        now = time.monotonic()
        with self._lock:
            cached = self._templates.get(template_id)
        if (
            cached is not None
            and cached.folder_mtime == folder_mtime
            and now - cached.scanned < FILES_RECHECK_SECONDS
        ):
            return cached.template
        try:
            stamp = tuple(
                sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in os.scandir(folder))
            )
        except (FileNotFoundError, NotADirectoryError):
            raise UnknownTemplate(template_id) from None
        if not any(name == TEMPLATE_FILE for name, _, _ in stamp):
            raise UnknownTemplate(template_id)
        if cached is not None and cached.stamp == stamp:
            template = cached.template
        else:
            template = load_template(
                self.templates_dir, template_id, default_max_gif_bytes=self.max_gif_bytes
            )
        with self._lock:
            self._templates[template_id] = _Loaded(template, stamp, folder_mtime, now)
        return template


@dataclasses.dataclass(frozen=True)
class _Loaded:
    """A template as loaded, and what its folder looked like then."""

    template: Template
    stamp: tuple[tuple[str, int, int], ...]  # (name, mtime, size) of every file
    folder_mtime: int
    scanned: float  # time.monotonic() of that scan


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def push_templates(
    catalog: DirectoryTemplateCatalog, blobs: BlobStore, template_ids: list[str] | None = None
) -> list[Template]:
    """Upload templates and their prepared artifacts to storage, then the index (last, so a
    renderer never sees an index entry whose files are not there yet)."""
    try:
        index: dict[str, Any] = json.loads(blobs.get(INDEX_KEY))
    except FileNotFoundError:
        index = {}
    chosen = template_ids or list(iter_template_ids(catalog.templates_dir))
    pushed = []
    for template_id in chosen:
        template = catalog.get(template_id, enabled_only=False)
        prepared = catalog.prepared(template)
        prefix = f"templates/{template.id}/{template.version}"
        sources = _files(template.folder)
        artifacts = _files(prepared.folder)
        for kind, paths in (("src", sources), ("prepared", artifacts)):
            for path in paths:
                try:
                    storage_key = validate_key(f"{prefix}/{kind}/{path.name}")
                except ValueError:
                    raise TemplateInvalid(
                        f"{template.id}: file name {path.name!r} must be lowercase letters, "
                        "digits, dots, dashes or underscores"
                    ) from None
                blobs.put(storage_key, path.read_bytes(), content_type=_type(path))
        index[template.id] = {
            "version": template.version,
            "prepared": prepared_folder_name(template.version),
            "enabled": template.enabled,
            "src": [p.name for p in sources],
            "artifacts": [p.name for p in artifacts],
        }
        pushed.append(template)
    blobs.put(INDEX_KEY, json.dumps(index, indent=2).encode(), content_type="application/json")
    return pushed


def _type(path: Path) -> str:
    return {
        ".toml": "application/toml",
        ".json": "application/json",
        ".npy": "application/octet-stream",
        ".mp4": "video/mp4",
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".gif": "image/gif",
        ".webm": "video/webm",
    }.get(path.suffix, "application/octet-stream")


class StoredTemplateCatalog:
    """Templates pushed to the blob store, cached on local disk by version (for AWS Lambda)."""

    def __init__(
        self,
        blobs: BlobStore,
        cache_dir: Path,
        prepared_dir: Path,
        *,
        spill_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_gif_bytes: int | None = None,
    ) -> None:
        self.blobs = blobs
        self.cache_dir = cache_dir
        self.prepared_dir = prepared_dir
        self.spill_dir = spill_dir  # where versions missing from a read-only prepared_dir go
        self.max_gif_bytes = max_gif_bytes  # the brand's GIF budget, unless a template has one
        self.clock = clock
        self._lock = threading.Lock()
        self._index: dict[str, Any] = {}
        self._index_read_at = -INDEX_REFRESH_SECONDS
        self._templates: dict[tuple[str, str], Template] = {}
        self._prepared = _PreparedCache()

    def get(self, template_id: str, *, enabled_only: bool = True) -> Template:
        if not TEMPLATE_ID_PATTERN.match(template_id):
            raise UnknownTemplate(template_id)
        entry = self._entries().get(template_id)
        if entry is None or (enabled_only and not entry.get("enabled", True)):
            raise UnknownTemplate(template_id)
        return self._template(template_id, entry)

    def all(self, *, enabled_only: bool = True) -> list[Template]:
        entries = sorted(self._entries().items())
        if not enabled_only:
            return [self._template(tid, entry) for tid, entry in entries]
        loaders = [
            (tid, functools.partial(self._template, tid, entry))
            for tid, entry in entries
            if entry.get("enabled", True)
        ]
        return servable(loaders, self._prepared)

    def prepared(self, template: Template) -> PreparedTemplate:
        def build() -> PreparedTemplate:
            entry = self._entries().get(template.id) or {}
            if entry.get("version") == template.version:
                target = prepared_version_folder(template, self.prepared_dir, self.spill_dir)
                prefix = f"templates/{template.id}/{template.version}/prepared"
                self._download(prefix, entry.get("artifacts", []), target)
            # Found on disk now, or (a version the index no longer names) prepared here.
            return prepare_template(template, self.prepared_dir, spill_dir=self.spill_dir)

        return self._prepared.get_or_build(template, build)

    def prepared_file(self, template: Template, folder_name: str, name: str) -> Path:
        return prepared_file(self, self.prepared_dir, self.spill_dir, template, folder_name, name)

    def warming(self, template: Template) -> bool:
        return self._prepared.warming(template)

    def warm_up(self, *, workers: int, listed: Callable[[], None] | None = None) -> list[str]:
        """One after another, here: pushed templates come with their artifacts (a download)."""
        return warm_up(
            self, self._prepared, workers=workers, remote=lambda _template: None, listed=listed
        )

    def _entries(self) -> dict[str, Any]:
        with self._lock:
            if self.clock() - self._index_read_at < INDEX_REFRESH_SECONDS:
                return self._index
        index: dict[str, Any]
        try:
            index = json.loads(self.blobs.get(INDEX_KEY))
        except FileNotFoundError:
            index = {}
        except ValueError as exc:
            raise StorageUnavailable("the template index in storage is not valid JSON") from exc
        with self._lock:
            self._index, self._index_read_at = index, self.clock()
        return index

    def _template(self, template_id: str, entry: dict[str, Any]) -> Template:
        version = str(entry["version"])
        with self._lock:
            cached = self._templates.get((template_id, version))
        if cached is not None:
            return cached
        root = self.cache_dir / version
        folder = root / template_id
        self._download(f"templates/{template_id}/{version}/src", entry.get("src", []), folder)
        template = load_template(root, template_id, default_max_gif_bytes=self.max_gif_bytes)
        if template.version != version:
            # Same files, different version: this renderer's fonts differ from the pusher's.
            raise TemplateInvalid(
                f"template {template_id!r} was pushed as version {version} but reads as "
                f"{template.version} here (are the fonts the same?)"
            )
        with self._lock:
            self._templates[(template_id, version)] = template
        return template

    def _download(self, prefix: str, names: list[str], folder: Path) -> None:
        """Fetch files into ``folder`` unless it is complete; atomic, so racing workers are safe."""
        if folder.is_dir() and all((folder / name).is_file() for name in names):
            return
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=folder.parent))
        try:
            for name in names:
                if "/" in name or name.startswith("."):
                    raise StorageUnavailable(f"the template index names a bad file: {name!r}")
                (staging / name).write_bytes(self.blobs.get(f"{prefix}/{name}"))
            try:
                os.rename(staging, folder)
            except OSError:
                if not folder.is_dir():
                    raise
        except FileNotFoundError as exc:
            raise StorageUnavailable(f"a pushed template file is missing: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
