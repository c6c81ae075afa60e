"""The template catalog: templates by id, reloaded when their folder changes, prepared on demand.

Templates are read from ``LOOPMARK_TEMPLATES_DIR``; a template is re-read when its template.toml
changes, and its prepared artifacts (memory-mapped) are kept per version.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from loopmark.errors import UnknownTemplate
from loopmark.renderer.prepare import PreparedTemplate, prepare_template
from loopmark.renderer.templates import (
    TEMPLATE_FILE,
    TEMPLATE_ID_PATTERN,
    Template,
    iter_template_ids,
    load_template,
)

PREPARED_CACHE_SIZE = 32  # prepared templates held open (memory-mapped: cheap)


class TemplateCatalog:
    def __init__(self, templates_dir: Path, prepared_dir: Path) -> None:
        self.templates_dir = templates_dir
        self.prepared_dir = prepared_dir
        self._lock = threading.Lock()
        self._templates: dict[str, tuple[tuple[tuple[str, int, int], ...], Template]] = {}
        self._prepared: OrderedDict[tuple[str, str], PreparedTemplate] = OrderedDict()

    def get(self, template_id: str, *, enabled_only: bool = True) -> Template:
        """The template with this id; UnknownTemplate if missing (or disabled)."""
        template = self._load(template_id)
        if enabled_only and not template.enabled:
            raise UnknownTemplate(template_id)
        return template

    def all(self, *, enabled_only: bool = True) -> list[Template]:
        templates = [self._load(tid) for tid in iter_template_ids(self.templates_dir)]
        return [t for t in templates if t.enabled or not enabled_only]

    def prepared(self, template: Template) -> PreparedTemplate:
        """The prepared artifacts of this template version, built on first use."""
        cache_key = (template.id, template.version)
        with self._lock:
            found = self._prepared.get(cache_key)
            if found is not None:
                self._prepared.move_to_end(cache_key)
                return found
        prepared = prepare_template(template, self.prepared_dir)
        with self._lock:
            self._prepared[cache_key] = prepared
            while len(self._prepared) > PREPARED_CACHE_SIZE:
                self._prepared.popitem(last=False)
        return prepared

    def _load(self, template_id: str) -> Template:
        if not TEMPLATE_ID_PATTERN.match(template_id):
            raise UnknownTemplate(template_id)
        folder = self.templates_dir / template_id
        # Any file of the folder changing (toml, source, frame) makes a new Template, and so a new
        # version; a handful of stat calls is cheap next to a render and keeps cache hits honest.
        try:
            stamp = tuple(
                sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in os.scandir(folder))
            )
        except (FileNotFoundError, NotADirectoryError):
            raise UnknownTemplate(template_id) from None
        if not any(name == TEMPLATE_FILE for name, _, _ in stamp):
            raise UnknownTemplate(template_id)
        with self._lock:
            cached = self._templates.get(template_id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        template = load_template(self.templates_dir, template_id)
        with self._lock:
            self._templates[template_id] = (stamp, template)
        return template
