"""Writing a template's settings: the edit form's values merged into template.toml, checked by
the same parser the catalog uses, and written atomically (the catalog re-reads a folder when its
files change, so a half-written file must never be seen)."""

from __future__ import annotations

import copy
import os
import re
import tempfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import tomli_w

from loopmark.brand import GIF_BUDGET_MAX_BYTES, GIF_BUDGET_MIN_BYTES, gif_budget
from loopmark.errors import BadInput, TemplateInvalid
from loopmark.renderer.caption import fonts_dir
from loopmark.renderer.caption_policy import WordLists
from loopmark.renderer.colours import format_hex_colour
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.probe import probe_video
from loopmark.renderer.render import accept_caption
from loopmark.renderer.templates import (
    DEFAULT_CAPTION_LANGUAGE,
    STABILISE_DISTANCE,
    TEMPLATE_FILE,
    Template,
    parse_template,
)
from loopmark.web.errors import reason_of
from loopmark.web.i18n import gettext

FONT_SUFFIXES = (".ttf", ".otf")
# Colour bitmap fonts are fallbacks for emoji, not caption fonts.
NOT_CAPTION_FONTS = ("Emoji",)
OWN_FONT = "@own"  # the font select's value for a font kept in the template's own folder
# The GIF size budget as the admin types it: bytes, or kB / MB (decimal: 8 MB = 8,000,000 bytes,
# as the README's table of share targets counts them).
BYTES_PER_UNIT = {"": 1, "b": 1, "byte": 1, "bytes": 1, "kb": 1_000, "mb": 1_000_000}
_BUDGET_TEXT = re.compile(r"(?P<number>[0-9][0-9.,_ ]*)\s*(?P<unit>[a-z]*)")
_THOUSANDS = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")


class FieldInvalid(BadInput):
    """An edit refused, in plain words, naming the form field to mark (``None``: the form)."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field


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
    loop: str
    speed: float
    trim_start: float
    trim_duration: float
    # template.toml's [output] stabilise_distance; None: tuned at preparation.
    stabilise_distance: float | None = None
    # template.toml's [output] max_gif_bytes, in bytes (0: no budget); None: the brand's.
    max_gif_bytes: int | None = None
    # template.toml's [output] palette_spans: preparation also tries a palette per span of the
    # clip's time (written only when on: off is the default, and the version of old).
    palette_spans: bool = False
    publish: bool = False  # "Save and publish"


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
        loop=template.loop,
        speed=template.speed,
        trim_start=template.start_s,
        trim_duration=template.duration_s,
        stabilise_distance=template.stabilise_distance,
        max_gif_bytes=own_gif_budget(template),
        palette_spans=template.palette_spans,
    )


def own_gif_budget(template: Template) -> int | None:
    """The budget template.toml names itself (0: none), or None when the brand's applies."""
    value = (template.raw.get("output") or {}).get("max_gif_bytes")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def format_gif_budget(size: int) -> str:
    """A budget as the form shows it: in MB when that is exact to 10 kB (``8 MB``, ``7.5 MB``),
    else in bytes; ``parse_gif_budget`` reads either back to the same number."""
    if size and size % 10_000 == 0:
        return f"{size / 1_000_000:g} MB"
    return str(size)


def parse_gif_budget(text: str) -> int:
    """The bytes of a budget typed as ``8 MB``, ``7.5 MB``, ``750 kB``, ``8000000`` or
    ``8,000,000`` (0: none). ValueError, in plain words, for anything else or out of range."""
    allowed = budget_range()
    match = _BUDGET_TEXT.fullmatch(text.strip().lower())
    if match is None or match["unit"] not in BYTES_PER_UNIT:
        raise ValueError(allowed)
    number = match["number"].replace(" ", "").replace("_", "")
    # 8,000,000 groups thousands; 7,5 is a decimal comma.
    number = number.replace(",", "") if _THOUSANDS.fullmatch(number) else number.replace(",", ".")
    try:
        value = Decimal(number) * BYTES_PER_UNIT[match["unit"]]
    except InvalidOperation:
        raise ValueError(allowed) from None
    size = int(value.to_integral_value())
    if value != 0 and not GIF_BUDGET_MIN_BYTES <= size <= GIF_BUDGET_MAX_BYTES:
        if not match["unit"] and size < 1_000:
            raise ValueError(
                gettext(
                    "%(size)s bytes is far too small for a GIF: did you mean %(size)s MB?",
                    size=number,
                )
            )
        raise ValueError(allowed)
    return size


def check_output(edits: TemplateEdits) -> dict[str, Any]:
    """[output]'s stabilise distance, GIF budget and palette spans as edited (absent: automatic,
    the brand's, one palette), or FieldInvalid on the field at fault."""
    output: dict[str, Any] = {}
    distance = edits.stabilise_distance
    if distance is not None:
        if not STABILISE_DISTANCE.lo <= distance <= STABILISE_DISTANCE.hi:
            raise FieldInvalid("stabilise_distance", gettext(
                "The stabilise distance goes from %(min)g to %(max)g; leave it empty to have it "
                "tuned automatically.", min=STABILISE_DISTANCE.lo,
                max=STABILISE_DISTANCE.hi))  # fmt: skip
        output["stabilise_distance"] = int(distance) if distance.is_integer() else distance
    if edits.max_gif_bytes is not None:
        try:
            gif_budget(edits.max_gif_bytes)
        except ValueError:
            raise FieldInvalid("max_gif_bytes", budget_range()) from None
        output["max_gif_bytes"] = edits.max_gif_bytes
    if edits.palette_spans:
        output["palette_spans"] = True
    return output


def budget_range() -> str:
    """The GIF budgets allowed, in plain words (brand.toml's range, loopmark.brand)."""
    return gettext(
        "Enter a size from %(low)s to %(high)s, such as 8 MB or 8000000 (bytes), or 0 for no "
        "budget.", low=format_gif_budget(GIF_BUDGET_MIN_BYTES),
        high=format_gif_budget(GIF_BUDGET_MAX_BYTES))  # fmt: skip


def check_box(box: tuple[int, int, int, int], width: int, height: int) -> None:
    """FieldInvalid, in plain words, when the text box leaves the loop's frame."""
    x, y, w, h = box
    size = f"{width} × {height}"
    if x >= width:
        raise FieldInvalid("box_x", gettext(
            "The text box starts past the right edge of the %(size)s loop: move it left "
            "(x below %(width)d).", size=size, width=width))  # fmt: skip
    if y >= height:
        raise FieldInvalid("box_y", gettext(
            "The text box starts below the bottom edge of the %(size)s loop: move it up "
            "(y below %(height)d).", size=size, height=height))  # fmt: skip
    if x + w > width:
        raise FieldInvalid("box_w", gettext(
            "The text box goes past the right edge of the %(size)s loop: make it narrower or "
            "move it left.", size=size))  # fmt: skip
    if y + h > height:
        raise FieldInvalid("box_h", gettext(
            "The text box goes past the bottom edge of the %(size)s loop: make it shorter or "
            "move it up.", size=size))  # fmt: skip


def check_trim(template: Template, edits: TemplateEdits) -> None:
    """A new start must fall inside the source video (probed again only when the trim changed)."""
    if (edits.trim_start, edits.trim_duration) == (template.start_s, template.duration_s):
        return
    length = probe_video(template.source).duration_s
    if edits.trim_start >= length:
        raise FieldInvalid("trim_start", gettext(
            "The video is %(seconds).1f s long: start the loop before its end.",
            seconds=length))  # fmt: skip


def apply_edits(
    template: Template, prepared: PreparedTemplate, edits: TemplateEdits, words: WordLists
) -> dict[str, Any]:
    """template.toml's new table, or FieldInvalid (plain words, the field to mark). Keys the
    form does not show (output width and fps, source, frame) are kept; ``enabled`` (false: a
    draft) changes only by publishing, which needs a credit line."""
    data = copy.deepcopy(template.raw)
    if isinstance(data.get("name"), dict):  # names by language: the form edits the default's
        data["name"] = {**data["name"], DEFAULT_CAPTION_LANGUAGE: edits.name.strip()}
    else:
        data["name"] = edits.name.strip()
    data["credit"] = edits.credit.strip()
    if not data["credit"] and (template.enabled or edits.publish):
        raise FieldInvalid(
            "credit",
            gettext("A published template needs a credit line (who made the footage, its licence).")
            + (
                ""
                if edits.publish
                else " " + gettext("Unpublish it first to leave the credit empty.")
            ),
        )
    if edits.publish:
        data["enabled"] = True
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
            raise FieldInvalid("font", gettext("Choose one of the fonts in the list."))
        text["font"] = edits.font
    data["text"] = text
    data["trim"] = {**(data.get("trim") or {}), "start": edits.trim_start,
                    "duration": edits.trim_duration}  # fmt: skip
    output = {
        key: value
        for key, value in (data.get("output") or {}).items()
        # Emptied: automatic, the brand's, one palette.
        if key not in ("stabilise_distance", "max_gif_bytes", "palette_spans")
    }
    data["output"] = {**output, "loop": edits.loop, "speed": edits.speed, **check_output(edits)}
    if edits.min_size > edits.max_size:
        raise FieldInvalid("min_size", gettext(
            "The smallest size is larger than the largest (%(max)d px): lower it, or raise the "
            "largest.", max=edits.max_size))  # fmt: skip
    check_box(edits.box, prepared.width, prepared.height)
    if data["caption_mode"] == "presets" and not data["captions"]:
        raise FieldInvalid("captions", gettext(
            "Add at least one predefined caption, or let visitors write their own (Captions: "
            "free text)."))  # fmt: skip
    try:
        updated = parse_template(template.id, template.folder, data)
    except TemplateInvalid as exc:
        raise FieldInvalid(
            None, gettext("These settings cannot be used: %(reason)s", reason=exc.reason)
        ) from None
    for number, caption in enumerate(updated.captions, start=1):
        try:
            accept_caption(updated, caption, words)
        except BadInput as exc:
            raise FieldInvalid("captions", gettext(
                "Caption %(number)d (“%(caption)s”) would be refused to visitors: %(reason)s",
                number=number, caption=caption[:30], reason=reason_of(exc))) from None  # fmt: skip
    check_trim(template, edits)
    return data


def set_published(template: Template, published: bool) -> dict[str, Any]:
    """template.toml with the template published (shown to visitors) or back to a draft; a
    template without a credit line cannot be published (FieldInvalid on ``credit``)."""
    if published and not template.credit.strip():
        needed = gettext("Add a credit line before publishing (who made the footage, its licence).")
        raise FieldInvalid("credit", needed)
    data = copy.deepcopy(template.raw)
    data["enabled"] = published
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
