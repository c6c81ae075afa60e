"""Video templates: a folder per template with its source loop, branding frame and template.toml.

A template's *version* is a hash of everything that shapes its prepared frames (settings, source
bytes, frame bytes, font bytes, whether its captions can hold emoji), so editing any of them
invalidates the prepared cache and every render key made from it.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from loopmark.brand import gif_budget
from loopmark.errors import TemplateInvalid, UnknownTemplate
from loopmark.renderer.caption import DEFAULT_FONT, TextStyle, fonts_dir
from loopmark.renderer.caption_palette import may_draw_emoji
from loopmark.renderer.caption_policy import normalize_caption
from loopmark.renderer.colours import Rgb, parse_hex_colour
from loopmark.renderer.probe import SOURCE_MAX_BYTES

TEMPLATE_FILE = "template.toml"
TEMPLATE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
LOOP_STYLES = ("forward", "reverse", "boomerang")
CAPTION_MODES = ("free", "presets")
OUTPUT_MAX_WIDTH = 480
OUTPUT_MIN_WIDTH = 64
OUTPUT_MAX_FPS = 15
OUTPUT_MAX_FRAMES = 150
SOURCE_USED_SECONDS = 10.0
MAX_PRESET_CAPTIONS = 20  # per language
# Predefined captions may be given per language (``[captions]`` with ``en = [...]``,
# ``de = [...]``: ISO 639 codes); a plain list is in the default language.
DEFAULT_CAPTION_LANGUAGE = "en"
CAPTION_LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class FieldRange:
    """The values a numeric template field takes, and its default: the one definition that
    template.toml, ``loopmark templates add``, the admin's form and its live preview read."""

    lo: float
    hi: float
    default: float


TRIM_START = FieldRange(0.0, 3600.0, 0.0)
TRIM_DURATION = FieldRange(0.2, SOURCE_USED_SECONDS, 3.0)
OUTPUT_WIDTH = FieldRange(OUTPUT_MIN_WIDTH, OUTPUT_MAX_WIDTH, OUTPUT_MAX_WIDTH)
OUTPUT_FPS = FieldRange(1, OUTPUT_MAX_FPS, 12)
OUTPUT_SPEED = FieldRange(0.25, 4.0, 1.0)
# [output] stabilise_distance overrides the distance preparation tunes (renderer.quantize); the
# default here is only the range's, a template without the key is tuned.
STABILISE_DISTANCE = FieldRange(0, 32, 6)
# The text box, in output pixels; it must also lie inside the frame (checked on load).
BOX_X = FieldRange(0, OUTPUT_MAX_WIDTH, 0)
BOX_Y = FieldRange(0, 4000, 0)
BOX_W = FieldRange(16, OUTPUT_MAX_WIDTH, OUTPUT_MAX_WIDTH)
BOX_H = FieldRange(8, 4000, 80)
STROKE_WIDTH = FieldRange(0, 16, 3)
MAX_LINES = FieldRange(1, 6, 2)
MAX_SIZE = FieldRange(8, 200, 40)
MIN_SIZE = FieldRange(6, 200, 14)  # and at most the template's max_size


@dataclass(frozen=True)
class TextBox:
    """Where the caption goes, in output pixels (the height is known once the source is probed)."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Template:
    id: str
    folder: Path
    name: str
    source: Path
    frame: Path | None
    start_s: float
    duration_s: float
    width: int
    fps: int
    loop: str
    speed: float
    box: TextBox
    style: TextStyle
    captions: tuple[str, ...]  # every predefined caption, all languages (default first)
    caption_mode: str
    credit: str
    enabled: bool
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    stabilise_distance: float | None = None  # None: tuned at preparation
    # [output] palette_spans: preparation also tries a palette per span of the clip's time
    # (renderer.palette_groups) and keeps it where it measures better per byte. Off by default:
    # the trial costs about a second of preparation, and one of the five benchmark templates
    # gained from it.
    palette_spans: bool = False
    # The largest GIF its renders may give (renderer.budget): template.toml's [output]
    # max_gif_bytes, else the brand's (given by the catalog); None: no budget. Not part of the
    # version (preparation never reads it): render keys hold it instead.
    max_gif_bytes: int | None = None
    # The biggest source file preparation probes (a visitor's clip may be bigger: see clip.py).
    source_max_bytes: ClassVar[int] = SOURCE_MAX_BYTES
    # Whether a render may have no caption at all (a visitor's clip: see clip.py).
    caption_optional: ClassVar[bool] = False
    # How the frame PNG meets the output: stretched to it (a template's frame is drawn for its
    # shape), or, for a clip of any shape, its corners kept at their proportions (clip.py).
    frame_keeps_corners: ClassVar[bool] = False
    # The predefined captions by language (``captions`` in template.toml; a plain list is
    # DEFAULT_CAPTION_LANGUAGE's).
    caption_sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    # The template's name by language (``name`` in template.toml: text, or a table by language
    # code); ``name`` is the default language's.
    names: Mapping[str, str] = field(default_factory=dict, compare=False)

    def name_for(self, language: str | None) -> str:
        """The name to show in ``language``: its own, else the default language's."""
        return self.names.get(language or DEFAULT_CAPTION_LANGUAGE, self.name)

    def captions_for(self, language: str | None) -> tuple[str, ...]:
        """The captions to offer in ``language``: its own, else the default language's, else
        the first language's (None: the default language's)."""
        for candidate in (language or DEFAULT_CAPTION_LANGUAGE, DEFAULT_CAPTION_LANGUAGE):
            if candidate in self.caption_sets:
                return self.caption_sets[candidate]
        return next(iter(self.caption_sets.values()), ())

    def caption_language(self, caption: str) -> str | None:
        """The language of the caption set holding ``caption`` (compared as the caption policy
        normalises it); None for the visitor's own words."""
        wanted = normalize_caption(caption)
        for language, captions in self.caption_sets.items():
            if any(normalize_caption(c) == wanted for c in captions):
                return language
        return None

    @functools.cached_property
    def draws_emoji(self) -> bool:
        """Whether its captions can hold emoji: preparation keeps palette entries for their
        colours only then (caption_palette)."""
        return may_draw_emoji(self.caption_mode, self.captions)

    @functools.cached_property
    def version(self) -> str:
        """Hash of every input of the prepared frames; changes whenever one of them changes."""
        digest = hashlib.sha256()
        settings = (
            self.start_s, self.duration_s, self.width, self.fps, self.loop, self.speed,
            self.style.fill, self.style.stroke,
        )  # fmt: skip
        text = repr(settings)
        if self.stabilise_distance is not None:  # only then: other versions stay as they were
            text += repr(("stabilise", self.stabilise_distance))
        if self.palette_spans:  # the same
            text += repr(("palette_spans", True))
        if not self.draws_emoji:  # the same: a palette without the emoji colours
            text += repr(("emoji", False))
        digest.update(text.encode())
        for path in (self.source, self.frame, self.style.font):
            digest.update(b"\0" if path is None else _file_digest(path).encode())
        return digest.hexdigest()[:16]


def _file_digest(path: Path) -> str:
    stat = path.stat()
    return _file_digest_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _file_digest_cached(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def parse_colour(value: Any, what: str) -> Rgb:
    try:
        return parse_hex_colour(str(value))
    except ValueError:
        raise TemplateInvalid(f"{what} must be a colour like #ffcc00, not {value!r}") from None


def _number(table: dict[str, Any], key: str, bounds: FieldRange, hi: float | None = None) -> float:
    """``table[key]`` within ``bounds`` (``hi`` narrows the top), its default when absent."""
    value = table.get(key, bounds.default)
    lo, hi = bounds.lo, bounds.hi if hi is None else hi
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise TemplateInvalid(f"{key} must be a number from {lo:g} to {hi:g}, not {value!r}")
    return float(value)


def _resolve_font(folder: Path, name: str | None) -> Path:
    name = name or DEFAULT_FONT
    for base in (folder, fonts_dir()):
        candidate = (base / name).resolve()
        if candidate.is_file() and candidate.is_relative_to(base.resolve()):
            return candidate
    raise TemplateInvalid(f"font {name!r} not found in the template folder or static/fonts")


def _inside(folder: Path, name: str, what: str) -> Path:
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise TemplateInvalid(f"{what} must be inside the template folder")
    if not path.is_file():
        raise TemplateInvalid(f"{what} {name!r} is missing")
    return path


def parse_template(
    template_id: str,
    folder: Path,
    data: dict[str, Any],
    *,
    default_max_gif_bytes: int | None = None,
) -> Template:
    """Validate a template.toml table into a Template; every problem is a TemplateInvalid.
    ``default_max_gif_bytes`` (the brand's) applies unless [output] names its own budget."""
    trim = data.get("trim", {})
    output = data.get("output", {})
    text = data.get("text", {})
    if not all(isinstance(t, dict) for t in (trim, output, text)):
        raise TemplateInvalid("[trim], [output] and [text] must be tables")
    width = int(_number(output, "width", OUTPUT_WIDTH))
    palette_spans = output.get("palette_spans", False)
    if not isinstance(palette_spans, bool):
        raise TemplateInvalid(f"palette_spans must be true or false, not {palette_spans!r}")
    loop = output.get("loop", "forward")
    if loop not in LOOP_STYLES:
        raise TemplateInvalid(f"loop must be one of {', '.join(LOOP_STYLES)}")
    caption_mode = data.get("caption_mode", "free")
    if caption_mode not in CAPTION_MODES:
        raise TemplateInvalid(f"caption_mode must be one of {', '.join(CAPTION_MODES)}")
    caption_sets = _caption_sets(data.get("captions", []))
    captions = list(dict.fromkeys(c for cs in caption_sets.values() for c in cs))
    if caption_mode == "presets" and not captions:
        raise TemplateInvalid("caption_mode 'presets' needs at least one caption")
    box = text.get("box", [width // 16, 0, width - width // 8, 0])
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) for v in box)):
        raise TemplateInvalid("text.box must be [x, y, w, h] in output pixels")
    if min(box) < 0 or box[0] + box[2] > width:
        raise TemplateInvalid("text.box must lie inside the output frame")
    max_size = int(_number(text, "max_size", MAX_SIZE))
    style = TextStyle(
        font=_resolve_font(folder, text.get("font")),
        fill=parse_colour(text.get("fill", "#ffffff"), "text.fill"),
        stroke=parse_colour(text.get("stroke", "#000000"), "text.stroke"),
        stroke_width=int(_number(text, "stroke_width", STROKE_WIDTH)),
        align=str(text.get("align", "center")),
        max_lines=int(_number(text, "max_lines", MAX_LINES)),
        max_size=max_size,
        min_size=int(_number(text, "min_size", MIN_SIZE, hi=max_size)),
    )
    if style.align not in ("left", "center", "right"):
        raise TemplateInvalid("text.align must be left, center or right")
    max_gif_bytes = default_max_gif_bytes
    if "max_gif_bytes" in output:
        try:
            max_gif_bytes = gif_budget(output["max_gif_bytes"])
        except ValueError as exc:
            raise TemplateInvalid(f"max_gif_bytes {exc}") from None
    frame_name = data.get("frame")
    names = _names(data.get("name", template_id))
    return Template(
        id=template_id,
        folder=folder,
        name=names.get(DEFAULT_CAPTION_LANGUAGE) or next(iter(names.values()), template_id),
        names=names,
        source=_inside(folder, str(data.get("source", "")), "source"),
        frame=_inside(folder, str(frame_name), "frame") if frame_name else None,
        start_s=_number(trim, "start", TRIM_START),
        duration_s=_number(trim, "duration", TRIM_DURATION),
        width=width - width % 2,
        fps=int(_number(output, "fps", OUTPUT_FPS)),
        loop=loop,
        speed=_number(output, "speed", OUTPUT_SPEED),
        box=TextBox(*box),
        style=style,
        captions=tuple(captions),
        caption_sets=caption_sets,
        caption_mode=caption_mode,
        credit=str(data.get("credit", "")),
        enabled=bool(data.get("enabled", True)),
        raw=data,
        stabilise_distance=(
            _number(output, "stabilise_distance", STABILISE_DISTANCE)
            if "stabilise_distance" in output
            else None
        ),
        max_gif_bytes=max_gif_bytes,
        palette_spans=palette_spans,
    )


def _names(value: Any) -> dict[str, str]:
    """``name`` of template.toml: text (the default language's) or a table of names by language
    code (``[name]`` with ``en = "Wake up"``, ``de = "Aufwachen"``)."""
    if not isinstance(value, dict):
        return {DEFAULT_CAPTION_LANGUAGE: str(value)}
    names: dict[str, str] = {}
    for language, name in value.items():
        if not CAPTION_LANGUAGE_PATTERN.match(language):
            raise TemplateInvalid(f"name: {language!r} is not a language code like en or de")
        if not isinstance(name, str):
            raise TemplateInvalid(f"name.{language} must be text")
        if name.strip():
            names[language] = name.strip()
    return names


def _caption_sets(value: Any) -> dict[str, tuple[str, ...]]:
    """``captions`` of template.toml: a list (the default language's) or a table of lists by
    language code, default language first."""
    table = {DEFAULT_CAPTION_LANGUAGE: value} if isinstance(value, list) else value
    if not isinstance(table, dict):
        raise TemplateInvalid("captions must be a list of strings or a table of them by language")
    sets: dict[str, tuple[str, ...]] = {}
    for language, captions in table.items():
        if not CAPTION_LANGUAGE_PATTERN.match(language):
            raise TemplateInvalid(f"captions: {language!r} is not a language code like en or de")
        if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
            raise TemplateInvalid(f"captions.{language} must be a list of strings")
        if len(captions) > MAX_PRESET_CAPTIONS:
            raise TemplateInvalid(f"at most {MAX_PRESET_CAPTIONS} predefined captions a language")
        if captions:
            sets[language] = tuple(captions)
    ordered = sorted(sets, key=lambda lang: lang != DEFAULT_CAPTION_LANGUAGE)
    return {language: sets[language] for language in ordered}


def load_template(
    templates_dir: Path, template_id: str, *, default_max_gif_bytes: int | None = None
) -> Template:
    if not TEMPLATE_ID_PATTERN.match(template_id):
        raise UnknownTemplate(template_id)
    folder = templates_dir / template_id
    path = folder / TEMPLATE_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnknownTemplate(template_id) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TemplateInvalid(f"{template_id}/{TEMPLATE_FILE}: {exc}") from None
    return parse_template(template_id, folder, data, default_max_gif_bytes=default_max_gif_bytes)


def iter_template_ids(templates_dir: Path) -> Iterator[str]:
    if not templates_dir.is_dir():
        return
    for child in sorted(templates_dir.iterdir()):
        if TEMPLATE_ID_PATTERN.match(child.name) and (child / TEMPLATE_FILE).is_file():
            yield child.name


def load_templates(templates_dir: Path) -> list[Template]:
    return [load_template(templates_dir, tid) for tid in iter_template_ids(templates_dir)]
