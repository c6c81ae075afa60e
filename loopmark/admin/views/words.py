"""The brand's word lists: forbidden words and allowed exceptions (false positives such as
"Scunthorpe"). Add, remove, import a text file; each change is effective for the next caption."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import flash, render_template
from flask_babel import gettext
from werkzeug.wrappers import Response

from loopmark.admin import blueprint
from loopmark.admin.auth import allows_body
from loopmark.admin.forms import WORD_KIND_LABELS, WordForm, WordImportForm
from loopmark.admin.views import back, flash_form_errors
from loopmark.errors import N_, BadInput
from loopmark.records.words import MAX_LIST_WORDS, MAX_RAW_WORD_CHARS, WORD_KINDS
from loopmark.web.context import services
from loopmark.web.errors import reason_of

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
        flash(
            gettext(
                "Added to %(list)s: %(word)s",
                list=_list_name(form.kind.data),
                word=(form.word.data or "").strip(),
            ),
            "ok",
        )
    else:
        flash_form_errors(form)
    return back(None, "admin.words")


@blueprint.post("/words/remove")
def words_remove() -> Response:
    form = WordForm()
    if form.validate_on_submit():
        removed = _change(lambda: services().words.remove(form.kind.data, form.word.data or ""))
        if removed:
            flash(
                gettext(
                    "Removed from %(list)s: %(word)s",
                    list=_list_name(form.kind.data),
                    word=form.word.data,
                ),
                "ok",
            )
        elif removed is not None:
            flash(
                gettext(
                    "“%(word)s” was not in %(list)s.",
                    word=form.word.data,
                    list=_list_name(form.kind.data),
                ),
                "error",
            )
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
        flash(reason_of(exc), "error")
        return back(None, "admin.words")
    records = services().words
    kind = form.kind.data
    if form.replace.data:
        wanted = imported
    else:
        wanted = sorted(getattr(records.lists(), kind)) + imported
    count = _change(lambda: records.replace(kind, wanted))
    if count is not None:
        flash(
            gettext("%(list)s now holds %(count)d words.", list=_list_name(kind), count=count),
            "ok",
        )
    return back(None, "admin.words")


def read_word_file(data: bytes) -> list[str]:
    """Words from an uploaded text file: UTF-8 (a BOM is fine), one per line, blank lines and
    lines starting with # skipped. BadInput for anything else."""
    if len(data) > IMPORT_MAX_BYTES:
        raise BadInput(
            N_("The file is larger than %(kb)d KB."), params={"kb": IMPORT_MAX_BYTES // 1024}
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput(N_("The file must be UTF-8 text, one word per line.")) from None
    words = []
    for line in text.splitlines():
        word = line.strip()
        if word and not word.startswith(COMMENT_PREFIX):
            if len(word) > MAX_RAW_WORD_CHARS:
                raise BadInput(
                    N_("A line is longer than %(max)d characters."),
                    params={"max": MAX_RAW_WORD_CHARS},
                )
            words.append(word)
    if not words:
        raise BadInput(N_("The file holds no words."))
    return words


def _change(action: Callable[[], T]) -> T | None:
    """Run a change (effective for the next caption), flash a refusal (None)."""
    try:
        return action()
    except BadInput as exc:
        flash(reason_of(exc), "error")
        return None


def _list_name(kind: str) -> str:
    """A word list's name in the admin's language ("Forbidden", …)."""
    return str(WORD_KIND_LABELS.get(kind, kind))
