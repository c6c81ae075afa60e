"""The catalog of visitors' clips beside the brand's templates: one template catalog for renders.

A clip (a trim of an upload) is a one-off template (``renderer.clip``) whose id starts ``u-``.
Its description — which stored upload, its content hash, the trim, the source's size — is kept
in storage under ``incoming/clips/<id>.json``, so any worker that shares the storage (the local
pool, or a Lambda renderer) can resolve the id of a job, fetch the source and prepare the clip
lazily, exactly as templates are prepared. Every other id goes to the brand's catalog.

Once a clip is prepared its uploaded source is deleted from storage (unless the brand keeps
uploads): its prepared frames are all later renders of that clip need, and they are derived
pixels, not the visitor's file. The worker that prepares a clip keeps those frames in storage
too (``incoming/clips/<id>/<version>/``, the index ``files.json`` written last), before the
source goes: another worker, or another Lambda, renders a new caption on the clip from them
(on AWS the disk that prepared it is gone). They expire with the clip's description.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loopmark.errors import N_, BadInput, StorageUnavailable, TemplateInvalid, UnknownTemplate
from loopmark.renderer.clip import ClipTemplate, clip_template, is_clip_id
from loopmark.renderer.prepare import (
    PreparedTemplate,
    is_prepared,
    prepare_template,
    prepared_folder_name,
    prepared_version_folder,
)
from loopmark.renderer.templates import Template
from loopmark.service.catalog import TemplateCatalog, _PreparedCache, prepared_file
from loopmark.storage.base import BlobStore

log = logging.getLogger(__name__)

INCOMING_PREFIX = "incoming/"
CLIP_SPECS_PREFIX = "incoming/clips/"
CLIP_CACHE_SIZE = 256  # clip templates kept in memory (a few hundred bytes each)
SOURCE_FILE = "source"
SOURCE_TYPE = "application/octet-stream"  # stored opaque: never served as it is
STORED_INDEX = "files.json"  # names a stored clip's prepared files; written after them


class UploadGone(BadInput):
    """The upload behind a clip was processed (or expired) and deleted: upload it again."""

    code = "upload_gone"
    http_status = 410


@dataclass(frozen=True)
class ClipSpec:
    """What a worker needs to make a clip's template: where its source is stored, and the trim."""

    source_key: str
    content_sha256: str
    start_s: float
    duration_s: float
    source_width: int
    source_height: int

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ClipSpec:
        try:
            raw = json.loads(data)
            return cls(
                source_key=str(raw["source_key"]),
                content_sha256=str(raw["content_sha256"]),
                start_s=float(raw["start_s"]),
                duration_s=float(raw["duration_s"]),
                source_width=int(raw["source_width"]),
                source_height=int(raw["source_height"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageUnavailable(f"a clip description in storage is not valid: {exc}") from exc


def spec_key(template_id: str) -> str:
    return f"{CLIP_SPECS_PREFIX}{template_id}.json"


def stored_prefix(template: Template) -> str:
    """Where a clip version's prepared files are kept in storage."""
    return f"{CLIP_SPECS_PREFIX}{template.id}/{prepared_folder_name(template.version)}"


class ClipCatalog:
    """The brand's catalog, plus clips resolved from storage (a TemplateCatalog)."""

    def __init__(
        self,
        inner: TemplateCatalog,
        blobs: BlobStore,
        *,
        cache_dir: Path,
        prepared_dir: Path,
        spill_dir: Path | None = None,
        style_template: str | None = None,
        default_frame: Path | None = None,
        keep_uploads: bool = False,
        max_gif_bytes: int | None = None,
    ) -> None:
        self.inner = inner
        self.blobs = blobs
        self.cache_dir = cache_dir  # sources fetched from remote storage, until prepared
        self.prepared_dir = prepared_dir
        self.spill_dir = spill_dir
        self.style_template = style_template
        self.default_frame = default_frame  # the brand's (brand.toml), else the style's frame
        self.keep_uploads = keep_uploads
        # Clips keep to the brand's GIF budget (not their style template's own): a portrait
        # phone clip gives the biggest GIFs of all (480×854, 3 s: 5.5 MB).
        self.max_gif_bytes = max_gif_bytes
        self._lock = threading.Lock()
        self._clips: OrderedDict[str, ClipTemplate] = OrderedDict()
        self._prepared = _PreparedCache()

    # -- TemplateCatalog ----------------------------------------------------------------------

    def get(self, template_id: str, *, enabled_only: bool = True) -> Template:
        if is_clip_id(template_id):
            return self.clip(template_id)
        return self.inner.get(template_id, enabled_only=enabled_only)

    def all(self, *, enabled_only: bool = True) -> list[Template]:
        """The brand's templates only: clips are never listed."""
        return self.inner.all(enabled_only=enabled_only)

    def prepared(self, template: Template) -> PreparedTemplate:
        if isinstance(template, ClipTemplate):
            prepared = self._prepared.get_or_build(template, lambda: self._prepare_clip(template))
            # Prepared (now, or before: the same clip uploaded again) and its frames kept in
            # storage: the upload it was described with is processed.
            self._delete_source(template)
            return prepared
        return self.inner.prepared(template)

    def warming(self, template: Template) -> bool:
        """A clip is prepared on demand, never by a start's warm-up."""
        return not isinstance(template, ClipTemplate) and self.inner.warming(template)

    def warm_up(self, *, workers: int, listed: Callable[[], None] | None = None) -> list[str]:
        """The brand's templates only (clips are prepared when rendered)."""
        return self.inner.warm_up(workers=workers, listed=listed)

    def _delete_source(self, template: ClipTemplate) -> None:
        """Delete the clip's upload once its prepared frames are kept in storage."""
        if self.keep_uploads:
            return
        try:
            if not self.is_stored(template):
                return  # kept until it expires: a later caption may need it
            spec = ClipSpec.from_json(self.blobs.get(spec_key(template.id)))
            self.blobs.delete(spec.source_key)
        except (FileNotFoundError, StorageUnavailable) as exc:  # gc removes it within the hour
            log.warning("clip %s: its upload was not deleted: %s", template.id, exc)

    def prepared_file(self, template: Template, folder_name: str, name: str) -> Path:
        if isinstance(template, ClipTemplate):
            return prepared_file(
                self, self.prepared_dir, self.spill_dir, template, folder_name, name
            )
        return self.inner.prepared_file(template, folder_name, name)

    # -- clips --------------------------------------------------------------------------------

    def style_base(self) -> Template:
        """The template whose caption style clips take (and its frame, when the brand has no
        default frame): the configured one, else the first enabled template."""
        if self.style_template:
            return self.inner.get(self.style_template, enabled_only=False)
        templates = self.inner.all()
        if not templates:
            raise TemplateInvalid("there is no template to take the brand's frame from")
        return templates[0]

    def describe(self, template_id: str, spec: ClipSpec) -> ClipTemplate:
        """Record a clip's description in storage (idempotent) and return its template."""
        self.blobs.put(spec_key(template_id), spec.to_json(), content_type="application/json")
        return self._remember(template_id, spec)

    def clip(self, template_id: str) -> ClipTemplate:
        """A clip's template, from memory or its description in storage; UnknownTemplate when
        there is none."""
        with self._lock:
            found = self._clips.get(template_id)
            if found is not None:
                self._clips.move_to_end(template_id)
                return found
        try:
            spec = ClipSpec.from_json(self.blobs.get(spec_key(template_id)))
        except (FileNotFoundError, ValueError):
            raise UnknownTemplate(template_id) from None
        return self._remember(template_id, spec)

    def is_ready(self, template: ClipTemplate) -> bool:
        """Whether the clip's frames are prepared here or kept in storage (no source needed
        for a new caption)."""
        folder = prepared_version_folder(template, self.prepared_dir, self.spill_dir)
        return is_prepared(folder) or self.is_stored(template)

    def is_stored(self, template: ClipTemplate) -> bool:
        """Whether the clip's prepared frames are kept in storage (for any worker)."""
        return self.blobs.exists(f"{stored_prefix(template)}/{STORED_INDEX}")

    def _remember(self, template_id: str, spec: ClipSpec) -> ClipTemplate:
        template = clip_template(
            self.style_base(),
            template_id=template_id,
            source=self.cache_dir / template_id / SOURCE_FILE,
            content_sha256=spec.content_sha256,
            start_s=spec.start_s,
            duration_s=spec.duration_s,
            source_width=spec.source_width,
            source_height=spec.source_height,
            frame=self.default_frame,
        )
        template = dataclasses.replace(template, max_gif_bytes=self.max_gif_bytes)
        with self._lock:
            self._clips[template_id] = template
            self._clips.move_to_end(template_id)
            while len(self._clips) > CLIP_CACHE_SIZE:
                self._clips.popitem(last=False)
        return template

    def _prepare_clip(self, template: ClipTemplate) -> PreparedTemplate:
        folder = prepared_version_folder(template, self.prepared_dir, self.spill_dir)
        if not is_prepared(folder):
            self._fetch_stored(template, folder)
        if is_prepared(folder):
            prepared = prepare_template(template, self.prepared_dir, spill_dir=self.spill_dir)
        else:
            prepared = self._prepare_from_source(template)
        self._store_prepared(
            template, prepared_version_folder(template, self.prepared_dir, self.spill_dir)
        )
        return prepared

    def _store_prepared(self, template: ClipTemplate, folder: Path) -> None:
        """Keep the clip's prepared files in storage (once), the index last."""
        if not is_prepared(folder) or self.is_stored(template):
            return
        prefix = stored_prefix(template)
        names = sorted(path.name for path in folder.iterdir() if path.is_file())
        try:
            for name in names:
                self.blobs.put_file(f"{prefix}/{name}", folder / name, content_type=SOURCE_TYPE)
            index = json.dumps({"files": names}).encode()
            self.blobs.put(f"{prefix}/{STORED_INDEX}", index, content_type="application/json")
        except StorageUnavailable as exc:
            # The render goes on; the upload is then kept (not deleted) until it expires.
            log.warning(
                "clip %s: its prepared frames were not kept in storage: %s", template.id, exc
            )

    def _fetch_stored(self, template: ClipTemplate, folder: Path) -> None:
        """Fetch the clip's prepared files from storage into ``folder`` when they are kept
        there (atomically: racing workers each rename a complete folder or none)."""
        prefix = stored_prefix(template)
        try:
            names = json.loads(self.blobs.get(f"{prefix}/{STORED_INDEX}"))["files"]
        except FileNotFoundError:
            return
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageUnavailable(f"clip {template.id}: its stored index is bad: {exc}") from exc
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".fetching-", dir=folder.parent))
        try:
            for name in names:
                if not isinstance(name, str) or "/" in name or name.startswith("."):
                    raise StorageUnavailable(f"clip {template.id}: bad stored file {name!r}")
                self.blobs.get_file(f"{prefix}/{name}", staging / name)
            try:
                os.rename(staging, folder)
            except OSError:
                if not is_prepared(folder):
                    raise
        except FileNotFoundError:
            log.warning("clip %s: its stored frames are incomplete", template.id)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _prepare_from_source(self, template: ClipTemplate) -> PreparedTemplate:
        spec = ClipSpec.from_json(self._spec_bytes(template.id))
        local = self.blobs.local_path(spec.source_key)
        fetched: Path | None = None
        if local is None:  # remote storage: fetch the upload next to nothing else of ours
            fetched = template.source
            fetched.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.blobs.get_file(spec.source_key, fetched)
            except FileNotFoundError:
                raise self._gone() from None
            local = fetched
        try:
            prepared = prepare_template(
                dataclasses.replace(template, source=local),
                self.prepared_dir,
                spill_dir=self.spill_dir,
            )
        finally:
            if fetched is not None:
                shutil.rmtree(fetched.parent, ignore_errors=True)
        return prepared  # the upload is deleted by ``prepared`` (its frames are kept)

    def _spec_bytes(self, template_id: str) -> bytes:
        try:
            return self.blobs.get(spec_key(template_id))
        except FileNotFoundError:
            raise self._gone() from None

    @staticmethod
    def _gone() -> UploadGone:
        return UploadGone(
            N_("This clip's upload was already used or has expired; please upload it again.")
        )
