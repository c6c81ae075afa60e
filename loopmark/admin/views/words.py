"""The brand's word lists: forbidden words and allowed exceptions (false positives such as
"Scunthorpe"). Add, remove, import a text file; each change is effective for the next caption."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import flash, render_template
from werkzeug.wrappers import Response

from loopmark.admin import blueprint
from loopmark.admin.auth import allows_body
from loopmark.admin.forms import WordForm, WordImportForm
from loopmark.admin.views import back, flash_form_errors
from loopmark.errors import BadInput
from loopmark.records.words import MAX_LIST_WORDS, MAX_RAW_WORD_CHARS, WORD_KINDS
from loopmark.web.context import services

# A full list: MAX_LIST_WORDS lines of up to MAX_RAW_WORD_CHARS characters (mostly ASCII), plus
# the form's own fields.
IMPORT_MAX_BYTES = 1024 * 1024
COMMENT_PREFIX = "#"

T = TypeVar("T")


@blueprint.get("/words")
def words() -> str:
    lists = services().words.lists()
    return render_template(
        "admin/words.html",
        lists={kind: sorted(getattr(lists, kind)) for kind in WORD_KINDS},
        add_form=WordForm(),
        remove_form=WordForm(),
        import_form=WordImportForm(),
        max_words=MAX_LIST_WORDS,
    )


@blueprint.post("/words/add")
def words_add() -> Response:
    form = WordForm()
    if form.validate_on_submit():
        _change(lambda: services().words.add(form.kind.data, form.word.data or ""))
        flash(f"Added to the {form.kind.data} words: {(form.word.data or '').strip()}", "ok")
    else:
        flash_form_errors(form)
    return back(None, "admin.words")


@blueprint.post("/words/remove")
def words_remove() -> Response:
    form = WordForm()
    if form.validate_on_submit():
        removed = _change(lambda: services().words.remove(form.kind.data, form.word.data or ""))
        if removed:
            flash(f"Removed from the {form.kind.data} words: {form.word.data}", "ok")
        elif removed is not None:
            flash(f"{form.word.data!r} was not in the {form.kind.data} words.", "error")
    else:
        flash_form_errors(form)
    return back(None, "admin.words")


@blueprint.post("/words/import")
@allows_body(IMPORT_MAX_BYTES)
def words_import() -> Response:
    form = WordImportForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return back(None, "admin.words")
    try:
        imported = read_word_file(form.file.data.read(IMPORT_MAX_BYTES + 1))
    except BadInput as exc:
        flash(exc.reason, "error")
        return back(None, "admin.words")
    records = services().words
    kind = form.kind.data
    if form.replace.data:
        wanted = imported
    else:
        wanted = sorted(getattr(records.lists(), kind)) + imported
    count = _change(lambda: records.replace(kind, wanted))
    if count is not None:
        flash(f"The {kind} list now holds {count} words.", "ok")
    return back(None, "admin.words")


def read_word_file(data: bytes) -> list[str]:
    """Words from an uploaded text file: UTF-8 (a BOM is fine), one per line, blank lines and
    lines starting with # skipped. BadInput for anything else."""
    if len(data) > IMPORT_MAX_BYTES:
        raise BadInput(f"the file is larger than {IMPORT_MAX_BYTES // 1024} KB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput("the file must be UTF-8 text, one word per line") from None
    words = []
    for line in text.splitlines():
        word = line.strip()
        if word and not word.startswith(COMMENT_PREFIX):
            if len(word) > MAX_RAW_WORD_CHARS:
                raise BadInput(f"a line is longer than {MAX_RAW_WORD_CHARS} characters")
            words.append(word)
    if not words:
        raise BadInput("the file holds no words")
    return words


def _change(action: Callable[[], T]) -> T | None:
    """Run a change (effective for the next caption), flash a refusal (None)."""
    try:
        return action()
    except BadInput as exc:
        flash(exc.reason, "error")
        return None
