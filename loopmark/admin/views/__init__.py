"""The admin's views by area (renders, gallery, words, templates, stats) and what they share.

Action views follow post/redirect/get: they change one thing, flash what happened (or why not)
and redirect, so a reload never repeats an action. A page's script may send the same form asking
for JSON (``wants_json``) and update the page in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import flash, redirect, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from loopmark.admin.auth import safe_next


def flash_form_errors(form: FlaskForm) -> None:
    """Flash each field's first error, named by its label."""
    for name, errors in form.errors.items():
        field = getattr(form, name, None)
        label = field.label.text if field is not None and field.label else name
        # Each field's errors are a list of messages (only a FormField's would be a mapping).
        if errors and isinstance(errors, Sequence):
            flash(f"{label}: {errors[0]}", "error")


def wants_json() -> bool:
    """The page's script asked for JSON (progressive enhancement); a plain form gets HTML."""
    return request.accept_mimetypes.best == "application/json"


def back(target: str | None, endpoint: str, **values: Any) -> Response:
    """Redirect (303) to ``target`` when it is an admin path, else to ``endpoint``."""
    return redirect(safe_next(target) or url_for(endpoint, **values), code=303)
