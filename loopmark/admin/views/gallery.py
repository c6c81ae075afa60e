"""Gallery curation: add a done render, remove an entry, move one up or down (plain forms, so
reordering works without JavaScript; the page's script sends the same forms with fetch and gets
the new order as JSON)."""

from __future__ import annotations

from flask import flash, jsonify, render_template
from flask_babel import gettext
from werkzeug.wrappers import Response

from loopmark.admin import blueprint
from loopmark.admin.forms import KeyForm, MoveForm
from loopmark.admin.views import back, flash_form_errors, wants_json
from loopmark.errors import BadInput
from loopmark.web import links
from loopmark.web.context import services
from loopmark.web.errors import reason_of


@blueprint.get("/gallery")
def gallery() -> str:
    entries = services().gallery.entries()
    posters = {entry.key: links.media_urls(entry.key)["poster"] for entry in entries}
    return render_template(
        "admin/gallery.html",
        entries=entries,
        posters=posters,
        key_form=KeyForm(),
        move_form=MoveForm(),
    )


@blueprint.post("/gallery/add")
def gallery_add() -> Response:
    form = KeyForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return back(form.back.data, "admin.gallery")
    key = form.key.data or ""
    record = services().render.record(key)
    if record is None:
        flash(gettext("There is no such render."), "error")
        return back(form.back.data, "admin.gallery")
    try:
        entry = services().gallery.add(record)
    except BadInput as exc:
        flash(reason_of(exc), "error")
    else:
        flash(
            gettext(
                "In the gallery at position %(n)d: “%(caption)s”.",
                n=entry.position + 1,
                caption=entry.caption,
            ),
            "ok",
        )
    return back(form.back.data, "admin.gallery")


@blueprint.post("/gallery/remove")
def gallery_remove() -> Response:
    form = KeyForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return back(form.back.data, "admin.gallery")
    if services().gallery.remove(form.key.data or ""):
        flash(gettext("Removed from the gallery."), "ok")
    else:
        flash(gettext("That render was not in the gallery."), "error")
    return back(form.back.data, "admin.gallery")


@blueprint.post("/gallery/move")
def gallery_move() -> Response | tuple[Response, int]:
    """Move an entry; the page's script asks for JSON (the new order) and reorders in place."""
    form = MoveForm()
    as_json = wants_json()
    if not form.validate_on_submit():
        if as_json:
            refusal = gettext("That move could not be understood: reload the page.")
            return jsonify(error=refusal), 400
        flash_form_errors(form)
        return back(form.back.data, "admin.gallery")
    store = services().gallery
    keys = [entry.key for entry in store.entries()]
    key = form.key.data or ""
    problem = None
    if key not in keys:
        problem = gettext("That render is no longer in the gallery: reload the page.")
    else:
        try:
            keys = moved(keys, key, form.direction.data or "")
            store.reorder(keys)
        except BadInput as exc:  # someone else changed the gallery in between
            problem = reason_of(exc)
    if as_json:
        if problem is not None:
            return jsonify(error=problem), 409
        return jsonify(order=keys), 200
    if problem is not None:
        flash(problem, "error")
    return back(form.back.data, "admin.gallery")


def moved(keys: list[str], key: str, direction: str) -> list[str]:
    """``keys`` with ``key`` moved one place up or down, or to the top or bottom."""
    rest = [k for k in keys if k != key]
    index = keys.index(key)
    target = {
        "up": max(0, index - 1),
        "down": min(len(rest), index + 1),
        "top": 0,
        "bottom": len(rest),
    }[direction]
    return [*rest[:target], key, *rest[target:]]
