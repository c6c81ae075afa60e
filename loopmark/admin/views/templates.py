"""Templates: list, enable or disable, upload a new loop (the CLI's hardened probe, then
prepared with its preview and poster), and edit the caption's box, colours, font and predefined
captions with a live preview. Editing needs the folder catalog (LOOPMARK_TEMPLATES_DIR); with
templates pushed to storage the pages are read-only."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flask import (
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # not in types-WTForms 3.2

from loopmark.admin import blueprint
from loopmark.admin.auth import allows_body
from loopmark.admin.forms import ActionForm, TemplateEditForm, TemplateUploadForm
from loopmark.admin.template_files import (
    OWN_FONT,
    TemplateEdits,
    apply_edits,
    caption_fonts,
    edits_of,
    set_enabled,
    write_template_file,
)
from loopmark.admin.views import flash_form_errors
from loopmark.errors import BadInput, LoopmarkError, ToolFailed, UnknownTemplate
from loopmark.package_data import WEB_FONTS_DIR
from loopmark.renderer.authoring import NewTemplate, add_template
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.templates import Template, iter_template_ids
from loopmark.service.catalog import DirectoryTemplateCatalog
from loopmark.web import assets
from loopmark.web.context import services
from loopmark.web.errors import reason_of

log = logging.getLogger(__name__)

# SECURITY.md: uploads ≤ 25 MB (the whole request body: the loop, a frame and the fields).
UPLOAD_MAX_BYTES = 25 * 1024 * 1024
UPLOAD_NAME = "upload"  # server-chosen: a client's file name never reaches a path or FFmpeg


@dataclass(frozen=True)
class TemplateRow:
    id: str
    template: Template | None
    prepared: PreparedTemplate | None
    problem: str | None


def folder_catalog() -> DirectoryTemplateCatalog | None:
    catalog = services().templates
    return catalog if isinstance(catalog, DirectoryTemplateCatalog) else None


def known_template_ids() -> list[str]:
    catalog = services().templates
    if isinstance(catalog, DirectoryTemplateCatalog):
        return list(iter_template_ids(catalog.templates_dir))
    try:
        return [t.id for t in catalog.all(enabled_only=False)]
    except LoopmarkError as exc:
        log.warning("template list unavailable: %s", exc.reason)
        return []


def _row(template_id: str) -> TemplateRow:
    catalog = services().templates
    try:
        template = catalog.get(template_id, enabled_only=False)
    except LoopmarkError as exc:
        return TemplateRow(template_id, None, None, exc.reason)
    try:
        prepared = catalog.prepared(template)
    except LoopmarkError as exc:
        return TemplateRow(template_id, template, None, exc.reason)
    return TemplateRow(template_id, template, prepared, None)


def _template_or_404(template_id: str) -> tuple[Template, PreparedTemplate]:
    row = _row(template_id)
    if row.template is None or row.prepared is None:
        abort(404)
    return row.template, row.prepared


def font_url(name: str) -> str | None:
    """A browser-loadable URL of a static/fonts file (its web copy where Chromium needs one)."""
    if name == OWN_FONT:
        return None
    stem = Path(name).stem
    if (WEB_FONTS_DIR / f"{stem}.woff2").is_file():
        return assets.asset_url(f"css/fonts/{stem}.woff2")
    return assets.asset_url(f"fonts/{name}")


@blueprint.get("/templates")
def templates() -> str:
    return render_template(
        "admin/templates.html",
        rows=[_row(tid) for tid in known_template_ids()],
        editable=folder_catalog() is not None,
        action_form=ActionForm(),
    )


@blueprint.get("/templates/<template_id>/poster.jpg")
def template_poster(template_id: str) -> Response:
    """Any template's poster, disabled ones included (the public route shows enabled ones)."""
    _, prepared = _template_or_404(template_id)
    if not prepared.poster_jpg.is_file():
        abort(404)
    # A few KB, read whole: no file handle outlives the request.
    return Response(prepared.poster_jpg.read_bytes(), mimetype="image/jpeg")


@blueprint.post("/templates/<template_id>/enabled")
def template_enabled(template_id: str) -> Response:
    catalog = folder_catalog()
    if catalog is None:
        abort(404)
    ActionForm()
    try:
        template = catalog.get(template_id, enabled_only=False)
    except UnknownTemplate:
        abort(404)
    enable = not template.enabled
    write_template_file(template.folder, set_enabled(template, enable))
    message = (
        gettext("%(name)s is now shown to visitors.", name=template.name)
        if enable
        else gettext("%(name)s is now hidden.", name=template.name)
    )
    flash(message, "ok")
    return redirect(url_for("admin.templates"), code=303)


@blueprint.route("/templates/<template_id>", methods=["GET", "POST"])
def template_edit(template_id: str) -> Response | tuple[str, int] | str:
    template, prepared = _template_or_404(template_id)
    editable = folder_catalog() is not None
    current = edits_of(template, prepared)
    form = TemplateEditForm(data=_form_data(current))
    fonts = caption_fonts()
    choices = [SelectChoice(name, Path(name).stem) for name in fonts]
    if current.font == OWN_FONT:
        choices.insert(
            0,
            SelectChoice(
                OWN_FONT, gettext("Template's own (%(font)s)", font=template.style.font.name)
            ),
        )
    form.font.choices = choices
    status = 200
    if editable and _posted():
        if form.validate_on_submit():
            try:
                data = apply_edits(template, prepared, _edits(form), services().words())
            except BadInput as exc:
                flash(reason_of(exc), "error")
                status = 422
            else:
                write_template_file(template.folder, data)
                catalog = services().templates
                # Prepared now (a new colour is a new version), so visitors never wait for it.
                catalog.prepared(catalog.get(template_id, enabled_only=False))
                flash(gettext("Saved %(name)s.", name=data["name"]), "ok")
                return redirect(url_for("admin.template_edit", template_id=template_id), code=303)
        else:
            flash_form_errors(form)
            status = 422
    return render_template(
        "admin/template_edit.html",
        template=template,
        prepared=prepared,
        form=form,
        editable=editable,
        font_urls={choice.value: font_url(choice.value) for choice in choices},
        sample=(template.captions[0] if template.captions else gettext("Your words here")),
    ), status


def _posted() -> bool:
    return request.method == "POST"


def _form_data(edits: TemplateEdits) -> dict[str, object]:
    x, y, w, h = edits.box
    return {
        "name": edits.name,
        "credit": edits.credit,
        "caption_mode": edits.caption_mode,
        "captions": "\n".join(edits.captions),
        "box_x": x,
        "box_y": y,
        "box_w": w,
        "box_h": h,
        "font": edits.font,
        "fill": edits.fill,
        "stroke": edits.stroke,
        "stroke_width": edits.stroke_width,
        "align": edits.align,
        "max_lines": edits.max_lines,
        "max_size": edits.max_size,
        "min_size": edits.min_size,
    }


def _given(value: int | None) -> int:
    """A required number of a validated form (InputRequired has refused a missing one)."""
    if value is None:
        raise BadInput("a required number is missing")
    return value


def _edits(form: TemplateEditForm) -> TemplateEdits:
    return TemplateEdits(
        name=form.name.data or "",
        credit=form.credit.data or "",
        caption_mode=form.caption_mode.data,
        captions=(form.captions.data or "").splitlines(),
        box=(
            _given(form.box_x.data),
            _given(form.box_y.data),
            _given(form.box_w.data),
            _given(form.box_h.data),
        ),
        font=form.font.data,
        fill=form.fill.data or "",
        stroke=form.stroke.data or "",
        stroke_width=_given(form.stroke_width.data),
        align=form.align.data,
        max_lines=_given(form.max_lines.data),
        max_size=_given(form.max_size.data),
        min_size=_given(form.min_size.data),
    )


@blueprint.route("/templates/new", methods=["GET", "POST"])
@allows_body(UPLOAD_MAX_BYTES)
def template_new() -> Response | tuple[str, int]:
    catalog = folder_catalog()
    if catalog is None:
        flash(
            gettext("Templates come from storage here: add them with `loopmark templates add`."),
            "error",
        )
        return redirect(url_for("admin.templates"), code=303)
    form = TemplateUploadForm()
    status = 200
    if _posted():
        status = 422
        if form.validate_on_submit():
            try:
                prepared = _add(form, catalog)
            except BadInput as exc:
                flash(reason_of(exc), "error")
            except ToolFailed as exc:
                log.warning("template upload failed: %s %s", exc.reason, exc.stderr[-400:])
                flash(gettext("This video could not be converted; try another file."), "error")
            else:
                flash(
                    gettext(
                        "Added %(name)s: %(width)d×%(height)d, %(frames)d frames. It is shown to "
                        "visitors now; tune it below.",
                        name=prepared.template.name,
                        width=prepared.width,
                        height=prepared.height,
                        frames=prepared.frame_count,
                    ),
                    "ok",
                )
                return redirect(
                    url_for("admin.template_edit", template_id=prepared.template.id), code=303
                )
        else:
            flash_form_errors(form)
        _close_uploads()
    return render_template("admin/template_new.html", form=form), status


def _close_uploads() -> None:
    """A refused upload's spooled files are closed now, not whenever they are collected."""
    for upload in request.files.values():
        upload.close()


def _add(form: TemplateUploadForm, catalog: DirectoryTemplateCatalog) -> PreparedTemplate:
    with tempfile.TemporaryDirectory(prefix="loopmark-upload-") as tmp:
        video = Path(tmp) / UPLOAD_NAME
        form.video.data.save(video)
        frame = None
        if form.frame.data:
            frame = Path(tmp) / "frame.png"
            form.frame.data.save(frame)
        spec = NewTemplate(
            template_id=form.template_id.data or "",
            video=video,
            start_s=float(form.start.data or 0),
            duration_s=float(form.duration.data) if form.duration.data else None,
            width=form.width.data or 0,
            fps=form.fps.data or 0,
            frame=frame,
            name=(form.name.data or "").strip() or None,
        )
        return add_template(spec, catalog.templates_dir, catalog.prepared_dir)
