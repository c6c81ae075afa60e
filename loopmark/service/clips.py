"""The catalog of visitors' clips beside the brand's templates: one template catalog for renders.

A clip (a trim of an upload) is a one-off template (``renderer.clip``) whose id starts ``u-``.
Its description — which stored upload, its content hash, the trim, the source's size — is kept
in storage under ``incoming/clips/<id>.json``, so any worker that shares the storage (the local
pool, or a Lambda renderer) can resolve the id of a job, fetch the source and prepare the clip
lazily, exactly as templates are prepared. Every other id goes to the brand's catalog.

Once a clip is prepared its uploaded source is deleted from storage (unless the brand keeps
uploads): its prepared frames are all later renders of that clip need, and they are derived
pixels, not the visitor's file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
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
        keep_uploads: bool = False,
        max_gif_bytes: int | None = None,
    ) -> None:
        self.inner = inner
        self.blobs = blobs
        self.cache_dir = cache_dir  # sources fetched from remote storage, until prepared
        self.prepared_dir = prepared_dir
        self.spill_dir = spill_dir
        self.style_template = style_template
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
            # Prepared (now, or before: the same clip uploaded again): the upload it was
            # described with is processed.
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
        if self.keep_uploads:
            return
        try:
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
        """The template whose frame and caption style clips take: the configured one, else the
        first enabled template."""
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
        """Whether the clip's frames are prepared here (no source needed for a new caption)."""
        folder = prepared_version_folder(template, self.prepared_dir, self.spill_dir)
        return is_prepared(folder)

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
        )
        template = dataclasses.replace(template, max_gif_bytes=self.max_gif_bytes)
        with self._lock:
            self._clips[template_id] = template
            self._clips.move_to_end(template_id)
            while len(self._clips) > CLIP_CACHE_SIZE:
                self._clips.popitem(last=False)
        return template

    def _prepare_clip(self, template: ClipTemplate) -> PreparedTemplate:
        if self.is_ready(template):
            return prepare_template(template, self.prepared_dir, spill_dir=self.spill_dir)
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
