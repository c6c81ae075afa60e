"""The catalogues are complete and current: every string marked in the code and templates has a
German translation, placeholders agree, the committed .mo files are what the .po files compile
to, and the scripts show no sentence of their own (they read the page's strings)."""

from __future__ import annotations

import configparser
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask import Flask

from loopmark.package_data import PACKAGE_DIR, STATIC_DIR, TRANSLATIONS_DIR
from loopmark.web import i18n
from tests.paths import REPO

# The Makefile's `translations` target extracts with these keywords (beyond gettext's own).
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "lazy_gettext": None,
    "N_": None,
    "_l": None,
    "_plural": (1, 2),
}
SHIPPED = [code for code in i18n.LANGUAGES if code != i18n.DEFAULT_LANGUAGE]
# Hop.t("key") / Hop.tn("key", n) in the scripts.
SCRIPT_KEY = re.compile(r"Hop\.tn?\(\s*\"([a-z_.]+)\"")
# A sentence in a script: a quoted capitalised word followed by more words.
SCRIPT_SENTENCE = re.compile(r"\"[A-Z][a-z']+(?: [A-Za-z'…!?.,:%]+)+\"")
NOT_SENTENCES = {'"Noto Sans"', '"Segoe UI"'}  # font families the preview names


# Words a page may show untranslated: the brand's name, formats and units.
UNTRANSLATED_WORDS = {"Hop", "Co", "GIF", "MP4", "fps", "px", "s"}
# Attributes people read (screen readers included); data-msg-* carry a script's words.
READ_ATTRIBUTES = {"aria-label", "aria-valuetext", "alt", "title", "placeholder", "label"}
TEMPLATE_DIRS = [PACKAGE_DIR / "site" / "templates", PACKAGE_DIR / "admin" / "templates"]


class BareText(HTMLParser):
    """Words in a template (Jinja removed) that no gettext call or trans block covers."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._code = 0
        self.feed(without_jinja(source))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "code"):
            self._code += 1
        for name, value in attrs:
            if value and (name in READ_ATTRIBUTES or name.startswith("data-msg")):
                self._check(f"{name}={value!r}", value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code"):
            self._code -= 1

    def handle_data(self, data: str) -> None:
        if not self._code:
            self._check(data.strip(), data)

    def _check(self, where: str, text: str) -> None:
        words = set(re.findall(r"[^\W\d_]{2,}", text))
        if words - UNTRANSLATED_WORDS:
            self.found.append(where)


def without_jinja(source: str) -> str:
    """The template's HTML: comments, trans blocks, expressions, tags and the blocks that hold
    class names or a section's name removed."""
    source = re.sub(r"(?s)\{#.*?#\}", " ", source)
    source = re.sub(r"(?s)\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}", " ", source)
    source = re.sub(
        r"(?s)\{%-?\s*block (?:body_class|section)\s*-?%\}.*?\{%-?\s*endblock\s*-?%\}",
        " ",
        source,
    )
    source = re.sub(r"(?s)\{\{.*?\}\}", " ", source)
    return re.sub(r"(?s)\{%.*?%\}", " ", source)


def extracted() -> set[str | tuple[str, str]]:
    """Every message id marked in the package, as `make translations` extracts them."""
    config = configparser.ConfigParser()
    config.read(REPO / "babel.cfg")
    method_map = [(section.split(":", 1)[1].strip(), section.split(":", 1)[0]) for section in
                  config.sections()]  # fmt: skip
    ids: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(PACKAGE_DIR), method_map, keywords=KEYWORDS
    ):
        ids.add(message if isinstance(message, str) else (message[0], message[1]))
    return ids


def catalogue(code: str) -> Catalog:
    with open(TRANSLATIONS_DIR / code / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=code)


def key_of(message_id: str | tuple[str, ...] | list[str]) -> str | tuple[str, str]:
    if isinstance(message_id, str):
        return message_id
    return (message_id[0], message_id[1])


def test_every_marked_string_is_extracted() -> None:
    ids = extracted()
    # A sample from each kind of source: templates, Python, the pure layers, the scripts.
    assert "Say it with a loop." in ids  # site template
    assert "Sign in" in ids  # admin template
    assert "Wrong name or password." in ids  # admin Python
    assert "Please write a caption." in ids  # renderer (N_)
    assert "Link copied!" in ids  # the scripts' strings
    assert ("About %(n)s second left", "About %(n)s seconds left") in ids
    assert len(ids) > 250


@pytest.mark.parametrize("code", SHIPPED)
def test_every_string_is_translated(code: str) -> None:
    po = catalogue(code)
    translated = {key_of(m.id): m for m in po if m.id}
    missing = sorted(map(str, extracted() - translated.keys()))
    assert missing == [], f"not in the {code} catalogue (run make translations): {missing}"
    untranslated = [
        str(m.id)
        for m in translated.values()
        if m.fuzzy or not (all(m.string) if isinstance(m.string, tuple) else m.string)
    ]
    assert untranslated == [], f"{code}: untranslated or fuzzy: {untranslated}"


@pytest.mark.parametrize("code", SHIPPED)
def test_placeholders_agree(code: str) -> None:
    problems = [(str(m.id), [str(e) for e in errors]) for m, errors in catalogue(code).check()]
    assert problems == []


@pytest.mark.parametrize("code", SHIPPED)
def test_compiled_catalogue_is_current(code: str) -> None:
    """The committed .mo (what the site reads) says what the .po says."""
    with open(TRANSLATIONS_DIR / code / "LC_MESSAGES" / "messages.mo", "rb") as fh:
        committed = read_mo(fh)
    fresh = io.BytesIO()
    write_mo(fresh, catalogue(code))
    fresh.seek(0)
    compiled = read_mo(fresh)

    def table(catalog: Catalog) -> dict[object, object]:
        return {key_of(m.id): m.string for m in catalog if m.id}

    assert table(committed) == table(compiled), "stale .mo: run make translations"


def test_scripts_read_every_string_from_the_page(app: Flask) -> None:
    with app.test_request_context("/"):
        provided = set(i18n.js_strings())
    used: set[str] = set()
    sentences: list[str] = []
    for script in sorted((STATIC_DIR / "js").glob("*.js")):
        text = script.read_text(encoding="utf-8")
        used |= set(SCRIPT_KEY.findall(text))
        code = "\n".join(
            line for line in text.splitlines() if not line.strip().startswith(("/*", "*", "//"))
        )
        found = set(SCRIPT_SENTENCE.findall(code)) - NOT_SENTENCES
        sentences += [f"{script.name}: {s}" for s in sorted(found)]
    assert used, "no Hop.t call found"
    assert sorted(used - provided) == [], "keys the page does not provide"
    assert sentences == [], "sentences written in a script instead of read from the page"


def test_templates_show_no_untranslated_words() -> None:
    bare = [
        f"{path.relative_to(PACKAGE_DIR)}: {text}"
        for folder in TEMPLATE_DIRS
        for path in sorted(folder.rglob("*.html"))
        for text in BareText(path.read_text(encoding="utf-8")).found
    ]
    assert bare == [], "words outside {{ _('…') }} or {% trans %}"


# A quoted literal in a Jinja expression or tag that people would read (capitalised, or words).
JINJA_CODE = re.compile(r"(?s)\{\{.*?\}\}|\{%(?!-?\s*(?:trans|endtrans|pluralize)\b).*?%\}")
TRANSLATED_LITERAL = re.compile(
    r"""\b(?:_|gettext|ngettext)\(\s*(['"]).*?\1(?:\s*,\s*(['"]).*?\2)?"""
)
LITERAL = re.compile(r"'([^'\n]*)'|\"([^\"\n]*)\"")


def reads_as_words(text: str) -> bool:
    """Capitalised (``Edit``) or several words (``free text``); not a class, endpoint or path."""
    if (
        not re.search(r"[^\W\d_]{2,}", text)
        or re.fullmatch(r"[\w.\-/#:]+", text)
        and (not text[:1].isupper())
    ):
        return False
    return text[:1].isupper() or " " in text.strip()


def literals_people_read(source: str) -> list[str]:
    """Quoted words in a template's Jinja code outside a gettext call (``{{ 'Edit' if … }}``)."""
    found = []
    for code in JINJA_CODE.findall(re.sub(r"(?s)\{#.*?#\}", " ", source)):
        rest = TRANSLATED_LITERAL.sub(" ", code)
        for match in LITERAL.finditer(rest):
            text = match.group(1) if match.group(1) is not None else match.group(2)
            if reads_as_words(text):
                found.append(text)
    return found


def test_templates_say_no_untranslated_literal() -> None:
    bare = [
        f"{path.relative_to(PACKAGE_DIR)}: {text}"
        for folder in TEMPLATE_DIRS
        for path in sorted(folder.rglob("*.html"))
        for text in literals_people_read(path.read_text(encoding="utf-8"))
    ]
    assert bare == [], "quoted words in Jinja code outside _()"


def test_the_literal_check_can_fail() -> None:
    page = (
        "{{ 'Edit' if editable else _('View') }} {{ url_for('pages.home') }} "
        "{{ 'primary' if x }} {% with alt=caption or 'A bunny' %}{% endwith %} "
        '{{ _("Hi %(n)s", n=1) }} {{ ngettext("%(num)s report", "%(num)s reports", n) }}'
    )
    assert literals_people_read(page) == ["Edit", "A bunny"]


def test_the_bare_text_check_can_fail() -> None:
    page = (
        '{% block section %}renders{% endblock %}<h1>{{ _("Fine") }}</h1><p>Not wrapped</p>'
        '<img alt="A bunny"><b data-msg-x="{{ _(\'ok\') }}">Hop &amp; Co.</b>'
        "{% trans %}Also <i>fine</i>{% endtrans %}"
    )
    assert BareText(page).found == ["Not wrapped", "alt='A bunny'"]


def test_the_sentence_check_can_fail() -> None:
    assert SCRIPT_SENTENCE.findall('say("Link copied!");') == ['"Link copied!"']
    assert SCRIPT_SENTENCE.findall('x = "ahead of you";') == []


def test_german_is_german(app: Flask) -> None:
    """Spot checks that the catalogue is really used (and is really German)."""
    client = app.test_client()
    html = client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    for phrase in ("Sag es mit einem Loop.", "Mein GIF erstellen", "Schreib deinen Text"):
        assert phrase in html
    for english in ("Say it with a loop.", "Create my GIF"):
        assert english not in html


def test_the_package_carries_the_catalogues() -> None:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    assert "translations/**/*" in setup["options.package_data"]["loopmark"]
    assert Path(TRANSLATIONS_DIR / "de" / "LC_MESSAGES" / "messages.mo").is_file()
