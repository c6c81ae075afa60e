"""The brand: name, slug, X handle, colours, default frame, share copy and the privacy and terms
pages, read from one ``brand.toml`` (the demo brand, Hop & Co., ships in ``hop-and-co/``).

Domain data beside the settings: ``config.Settings`` loads it at start-up (``LOOPMARK_BRAND_FILE``
names another file), the site and the admin show it, and the renderer's share cards are handed
it as a value. A file that does not parse, lacks a name or holds a bad colour stops start-up with
one line (``ConfigInvalid``) naming the file and the field.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from loopmark.errors import ConfigInvalid

DEMO_BRAND_FILE = Path(__file__).resolve().parent / "hop-and-co" / "brand.toml"
# #rrggbb only: CSS, the web manifest and Pillow all read it the same way.
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
MAX_NAME_CHARS = 60
PAGE_KINDS = ("privacy", "terms")
# A language code (en, de, pt-br): the brand's own language and its pages' translations.
LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})?")
DEFAULT_LANGUAGE = "en"
PAGE_FILE_MAX_BYTES = 64_000
# A GIF size budget ([output] max_gif_bytes here, a template's overrides it): whole bytes in
# this range, or 0 for none. Below about 50 kB even a 64 px GIF of a few frames does not fit;
# above 1 GB nothing is a budget any more.
GIF_BUDGET_MIN_BYTES = 50_000
GIF_BUDGET_MAX_BYTES = 1_000_000_000


@dataclass(frozen=True)
class BrandColours:
    """``#rrggbb`` each: ``primary`` (theme colour, headings, the cards' background), ``accent``
    (buttons, the cards' frame), ``background`` (pages), ``text`` (on primary), ``ink`` (body
    text on the background); the ``_dark``/``_deep`` shades are hover states, borders and
    text in the accent's hue (chosen by hand: contrast matters more than a formula)."""

    primary: str
    primary_dark: str
    accent: str
    accent_dark: str
    background: str
    background_deep: str
    text: str
    ink: str


@dataclass(frozen=True)
class ShareCopy:
    """What shared links say: each public page's title and description, a render's title when it
    has no caption, the share text (``{caption}`` is the caption), and the cards' wording."""

    site_title: str
    site_description: str
    gallery_title: str
    gallery_description: str
    credits_title: str
    credits_description: str
    render_title: str
    share_text: str
    card_line: str
    card_headline: str
    card_alt: str

    def text_for(self, caption: str | None) -> str:
        """The share text for a caption (its title without one). Plain substitution: a caption
        holding braces is never a format string."""
        return self.share_text.replace("{caption}", caption) if caption else self.render_title


@dataclass(frozen=True)
class BrandPage:
    """The privacy or terms page: a link to the brand's own page (``url``), or its text as
    blocks, each ``("h2" | "p", text)``. ``translations`` holds the same page in other
    languages (``[pages.privacy.de]``), each a BrandPage of its own."""

    title: str
    url: str | None = None
    blocks: tuple[tuple[str, str], ...] = ()
    translations: Mapping[str, BrandPage] = field(default_factory=dict, compare=False)

    def in_language(self, language: str | None) -> BrandPage:
        """The page as written for ``language``, or the brand's own (untranslated) one."""
        return self.translations.get(language or "", self)

    def is_translated(self, language: str | None) -> bool:
        return (language or "") in self.translations


@dataclass(frozen=True)
class Brand:
    name: str
    slug: str
    handle: str  # "@name": twitter:site
    colours: BrandColours
    share: ShareCopy
    privacy: BrandPage
    terms: BrandPage
    footer_note: str = ""
    # The language brand.toml's words are written in: share cards whose render has no language
    # of its own (a visitor's own words) are worded in it.
    language: str = DEFAULT_LANGUAGE
    default_frame: Path | None = None
    card_picture: Path | None = None
    source: Path | None = None  # the brand.toml it was read from
    # The largest GIF a visitor should get ([output] max_gif_bytes): the default of every
    # template (template.toml's [output] max_gif_bytes overrides it) and of visitors' clips.
    # None: no budget. See renderer.budget.
    max_gif_bytes: int | None = None

    # Changes whenever what pages and cards show of the brand changes: cache-busts brand.css
    # and the site's card.
    version: str = ""


def load_brand(path: Path) -> Brand:
    """The brand in ``path`` (a brand.toml), validated; ConfigInvalid with one line otherwise."""
    where = f"brand file {path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigInvalid(f"{where}: no such file (LOOPMARK_BRAND_FILE)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigInvalid(f"{where}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigInvalid(f"{where}: not valid TOML ({exc})") from None
    return _parse(data, path.resolve().parent, where, path)


@functools.lru_cache(maxsize=1)
def demo_brand() -> Brand:
    """The demo brand shipped with the package (read once, when first asked for)."""
    return load_brand(DEMO_BRAND_FILE)


def gif_budget(value: object) -> int | None:
    """A ``max_gif_bytes`` value as written (brand.toml, template.toml): its budget in bytes, or
    None for 0 (no budget). ValueError, saying what is allowed, for anything else."""
    allowed = (
        f"must be a whole number of bytes from {GIF_BUDGET_MIN_BYTES:_} to "
        f"{GIF_BUDGET_MAX_BYTES:_}, or 0 for none, not {value!r}"
    )
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(allowed)
    if value == 0:
        return None
    if not GIF_BUDGET_MIN_BYTES <= value <= GIF_BUDGET_MAX_BYTES:
        raise ValueError(allowed)
    return value


def valid_slug(raw: str) -> bool:
    return SLUG.fullmatch(raw) is not None


def normal_handle(raw: str) -> str | None:
    """``@name`` or ``name`` (1-15 letters, digits, underscores) → ``@name``; None if invalid."""
    handle = raw.strip().removeprefix("@")
    return "@" + handle if HANDLE.fullmatch(handle) else None


def _parse(data: dict[str, Any], folder: Path, where: str, path: Path) -> Brand:
    name = _text(data, "name", where, required=True)
    if len(name) > MAX_NAME_CHARS:
        raise ConfigInvalid(f"{where}: name is longer than {MAX_NAME_CHARS} characters")
    slug = _text(data, "slug", where, required=True)
    if not valid_slug(slug):
        raise ConfigInvalid(
            f"{where}: slug must be lowercase letters, digits and hyphens, not {slug!r}"
        )
    raw_handle = _text(data, "handle", where, required=True)
    handle = normal_handle(raw_handle)
    if handle is None:
        raise ConfigInvalid(
            f"{where}: handle must be an X handle like @hopandco, not {raw_handle!r}"
        )
    colours_table = _table(data, "colours", where)
    colours = BrandColours(
        **{
            field.name: _colour(colours_table, field.name, f"{where}: colours.")
            for field in fields(BrandColours)
        }
    )
    share_table = _table(data, "share", where)
    share = ShareCopy(
        **{
            field.name: _text(share_table, field.name, f"{where}: share.", required=True)
            for field in fields(ShareCopy)
        }
    )
    pages = _table(data, "pages", where)
    output = data.get("output", {})
    if not isinstance(output, dict):
        raise ConfigInvalid(f"{where}: [output] must be a table")
    try:
        max_gif_bytes = gif_budget(output.get("max_gif_bytes", 0))
    except ValueError as exc:
        raise ConfigInvalid(f"{where}: output.max_gif_bytes {exc}") from None
    privacy, terms = (_page(pages, kind, folder, where) for kind in PAGE_KINDS)
    return Brand(
        name=name,
        slug=slug,
        handle=handle,
        colours=colours,
        share=share,
        privacy=privacy,
        terms=terms,
        footer_note=_text(data, "footer_note", where),
        language=_language(data, where),
        default_frame=_file(data, "default_frame", folder, where),
        card_picture=_file(data, "card_picture", folder, where),
        source=path,
        max_gif_bytes=max_gif_bytes,
        version=_version(data, folder),
    )


def _version(data: dict[str, Any], folder: Path) -> str:
    digest = hashlib.sha256(repr(sorted(data.items())).encode())
    picture = data.get("card_picture")
    if isinstance(picture, str) and picture:
        digest.update((folder / picture).read_bytes())
    return digest.hexdigest()[:12]


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ConfigInvalid(f"{where}: the [{key}] table is missing")
    return value


def _text(data: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ConfigInvalid(f"{where}{'' if where.endswith('.') else ': '}{key} must be text")
    value = value.strip()
    if required and not value:
        raise ConfigInvalid(f"{where}{'' if where.endswith('.') else ': '}{key} is missing")
    return value


def _colour(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or COLOUR.fullmatch(value.strip()) is None:
        shown = "missing" if value is None else f"{value!r}"
        raise ConfigInvalid(f"{where}{key} must be a colour like #5b2e91, not {shown}")
    return value.strip().lower()


def _file(data: dict[str, Any], key: str, folder: Path, where: str) -> Path | None:
    name = _text(data, key, where)
    if not name:
        return None
    path = (folder / name).resolve()
    if not path.is_file():
        raise ConfigInvalid(f"{where}: {key} {name!r} is not a file beside the brand file")
    return path


def _language(data: dict[str, Any], where: str) -> str:
    language = _text(data, "language", where) or DEFAULT_LANGUAGE
    if LANGUAGE.fullmatch(language) is None:
        raise ConfigInvalid(f"{where}: language must be a code like en or de, not {language!r}")
    return language


def _page(pages: dict[str, Any], kind: str, folder: Path, where: str) -> BrandPage:
    table = pages.get(kind)
    if not isinstance(table, dict):
        raise ConfigInvalid(f"{where}: the [pages.{kind}] table is missing")
    page = _page_text(table, f"{where}: pages.{kind}.", folder)
    translations = {}
    for key, value in table.items():
        if not isinstance(value, dict):
            continue
        if LANGUAGE.fullmatch(key) is None:
            raise ConfigInvalid(
                f"{where}: [pages.{kind}.{key}]: {key!r} is not a language code like de"
            )
        translations[key] = _page_text(value, f"{where}: pages.{kind}.{key}.", folder)
    return replace(page, translations=translations) if translations else page


def _page_text(table: dict[str, Any], here: str, folder: Path) -> BrandPage:
    """One language's page: its title, and its ``url``, ``text`` or ``file``."""
    title = _text(table, "title", here, required=True)
    url = _text(table, "url", here)
    if url:
        if not url.startswith(("https://", "http://")):
            raise ConfigInvalid(f"{here}url must start with https:// or http://")
        return BrandPage(title=title, url=url)
    text = _text(table, "text", here)
    file_name = _text(table, "file", here)
    if file_name:
        file = _file(table, "file", folder, here.removesuffix("."))
        assert file is not None
        if file.stat().st_size > PAGE_FILE_MAX_BYTES:
            raise ConfigInvalid(f"{here}file is over {PAGE_FILE_MAX_BYTES} bytes")
        text = file.read_text(encoding="utf-8")
    if not text.strip():
        raise ConfigInvalid(f"{here.removesuffix('.')}: give a url, a text or a file")
    return BrandPage(title=title, blocks=_blocks(text))


def _blocks(text: str) -> tuple[tuple[str, str], ...]:
    """Paragraphs split by blank lines; a paragraph starting with "## " is a heading."""
    blocks: list[tuple[str, str]] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines = paragraph.strip().splitlines()
        if lines and lines[0].startswith("## "):
            blocks.append(("h2", lines[0][3:].strip()))
            lines = lines[1:]
        if lines:
            blocks.append(("p", " ".join(line.strip() for line in lines)))
    return tuple(blocks)
