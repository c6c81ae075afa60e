"""Writing a template's settings: the edit form's values merged into template.toml, checked by
the same parser the catalog uses, and written atomically (the catalog re-reads a folder when its
files change, so a half-written file must never be seen)."""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from loopmark.errors import BadInput, TemplateInvalid
from loopmark.renderer.caption import fonts_dir
from loopmark.renderer.caption_policy import WordLists
from loopmark.renderer.colours import format_hex_colour
from loopmark.renderer.prepare import PreparedTemplate, resolve_box
from loopmark.renderer.render import accept_caption
from loopmark.renderer.templates import (
    DEFAULT_CAPTION_LANGUAGE,
    TEMPLATE_FILE,
    Template,
    TextBox,
    parse_template,
)

FONT_SUFFIXES = (".ttf", ".otf")
# Colour bitmap fonts are fallbacks for emoji, not caption fonts.
NOT_CAPTION_FONTS = ("Emoji",)
OWN_FONT = "@own"  # the font select's value for a font kept in the template's own folder


@dataclass(frozen=True)
class TemplateEdits:
    name: str
    credit: str
    caption_mode: str
    captions: list[str]
    box: tuple[int, int, int, int]
    font: str  # a file of static/fonts, or OWN_FONT
    fill: str
    stroke: str
    stroke_width: int
    align: str
    max_lines: int
    max_size: int
    min_size: int


def caption_fonts() -> list[str]:
    """File names of static/fonts that a template may use for captions."""
    folder = fonts_dir()
    if not folder.is_dir():
        return []
    return sorted(
        path.name
        for path in folder.iterdir()
        if path.suffix.lower() in FONT_SUFFIXES
        and not any(word in path.name for word in NOT_CAPTION_FONTS)
    )


def font_choice(template: Template) -> str:
    """The font select's value for a template's current font."""
    font = template.style.font
    if font.parent.resolve() == fonts_dir().resolve():
        return font.name
    return OWN_FONT


def edits_of(template: Template, prepared: PreparedTemplate) -> TemplateEdits:
    """The edit form's starting values (the box as the renderer resolves it)."""
    style = template.style
    box = prepared.box
    return TemplateEdits(
        name=template.name,
        credit=template.credit,
        caption_mode=template.caption_mode,
        # The default language's (template.toml may hold other languages' too: kept as they are).
        captions=list(template.captions_for(None)),
        box=(box.x, box.y, box.w, box.h),
        font=font_choice(template),
        fill=format_hex_colour(style.fill),
        stroke=format_hex_colour(style.stroke),
        stroke_width=style.stroke_width,
        align=style.align,
        max_lines=style.max_lines,
        max_size=style.max_size,
        min_size=style.min_size,
    )


def apply_edits(
    template: Template, prepared: PreparedTemplate, edits: TemplateEdits, words: WordLists
) -> dict[str, Any]:
    """template.toml's new table; TemplateInvalid or CaptionRejected (BadInput) naming what is
    wrong. Keys the form does not show (trim, output, source, frame, enabled) are kept."""
    data = copy.deepcopy(template.raw)
    data["name"] = edits.name.strip()
    data["credit"] = edits.credit.strip()
    data["caption_mode"] = edits.caption_mode
    captions = [c.strip() for c in edits.captions if c.strip()]
    if isinstance(data.get("captions"), dict):
        data["captions"] = {**data["captions"], DEFAULT_CAPTION_LANGUAGE: captions}
    else:
        data["captions"] = captions
    text = dict(data.get("text") or {})
    text.update(
        box=list(edits.box),
        fill=edits.fill.lower(),
        stroke=edits.stroke.lower(),
        stroke_width=edits.stroke_width,
        align=edits.align,
        max_lines=edits.max_lines,
        max_size=edits.max_size,
        min_size=edits.min_size,
    )
    if edits.font != OWN_FONT:
        if edits.font not in caption_fonts():
            raise TemplateInvalid(f"unknown font {edits.font!r}")
        text["font"] = edits.font
    data["text"] = text
    if edits.min_size > edits.max_size:
        raise TemplateInvalid("the smallest size must not exceed the largest")
    updated = parse_template(template.id, template.folder, data)
    resolve_box(TextBox(*edits.box), prepared.width, prepared.height)
    for number, caption in enumerate(updated.captions, start=1):
        try:
            accept_caption(updated, caption, words)
        except BadInput as exc:
            raise BadInput(f"caption {number} ({caption[:30]!r}): {exc.reason}") from None
    return data


def set_enabled(template: Template, enabled: bool) -> dict[str, Any]:
    data = copy.deepcopy(template.raw)
    data["enabled"] = enabled
    return data


def write_template_file(folder: Path, data: dict[str, Any]) -> None:
    """Replace folder/template.toml atomically (a dot-file first: never pushed, never read)."""
    text = tomli_w.dumps(data)
    fd, staging = tempfile.mkstemp(prefix=".template-", suffix=".toml", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(staging, folder / TEMPLATE_FILE)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
