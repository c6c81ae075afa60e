"""Templates: list, publish or take back to a draft, upload a new loop (the CLI's hardened
probe; a draft, prepared in the background while its page polls), and edit the caption's box,
colours, font, predefined captions, trim, speed and direction with a live preview. Editing needs
the folder catalog (LOOPMARK_TEMPLATES_DIR); with templates pushed to storage the pages are
read-only.

A template is a draft until published (``enabled = false`` in its template.toml, so it survives
restarts and ``loopmark templates push``): visitors never list, preview or render it, and it
cannot be published without a credit line. Refusals name the form field they are about."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import (
    abort,
    flash,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import format_decimal, format_percent, gettext
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # not in types-WTForms 3.2

from loopmark.admin import blueprint
from loopmark.admin.auth import allows_body, safe_next
from loopmark.admin.forms import ActionForm, TemplateEditForm, TemplateUploadForm
from loopmark.admin.preparation import Preparation, Preparations, preparations
from loopmark.admin.template_files import (
    OWN_FONT,
    FieldInvalid,
    TemplateEdits,
    apply_edits,
    caption_fonts,
    edits_of,
    format_gif_budget,
    parse_gif_budget,
    set_published,
    write_template_file,
)
from loopmark.admin.views import wants_json
from loopmark.errors import (
    N_,
    BadInput,
    LoopmarkError,
    OptionRejected,
    ToolFailed,
    UnknownTemplate,
)
from loopmark.package_data import WEB_FONTS_DIR
from loopmark.renderer.authoring import NewTemplate, create_template
from loopmark.renderer.palette_groups import MIN_TRIAL_FRAMES, PaletteTrial
from loopmark.renderer.prepare import PreparedTemplate, recorded_palette_trial
from loopmark.renderer.templates import (
    STABILISE_DISTANCE,
    Template,
    iter_template_ids,
    parse_template,
)
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
    preparing: bool = False


def folder_catalog() -> DirectoryTemplateCatalog | None:
    catalog = services().templates
    return catalog if isinstance(catalog, DirectoryTemplateCatalog) else None


def background() -> Preparations | None:
    """The background preparations (the folder catalog only: stored templates come prepared)."""
    catalog = folder_catalog()
    return None if catalog is None else preparations(catalog)


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
    jobs = background()
    if jobs is not None and (not jobs.is_ready(template) or jobs.busy(template_id)):
        # Never prepared in a request: the page would hang for as long as FFmpeg runs. A
        # preparation written down (an edit a restart interrupted) is resumed by state().
        state = said(jobs.state(template_id))
        if state.state == "preparing" or not jobs.is_ready(template):
            preparing = state.state == "preparing"
            return TemplateRow(template_id, template, None, state.reason or None, preparing)
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
    """Any template's poster, drafts included (the public route shows published ones)."""
    _, prepared = _template_or_404(template_id)
    if not prepared.poster_jpg.is_file():
        abort(404)
    # A few KB, read whole: no file handle outlives the request.
    return Response(prepared.poster_jpg.read_bytes(), mimetype="image/jpeg")


@blueprint.get("/templates/<template_id>/preview.mp4")
def template_preview(template_id: str) -> Response:
    """Any template's preview loop, drafts included: the admin sees trim, speed and direction."""
    _, prepared = _template_or_404(template_id)
    if not prepared.preview_mp4.is_file():
        abort(404)
    return send_file(prepared.preview_mp4, mimetype="video/mp4", conditional=True, max_age=0)


@blueprint.get("/templates/<template_id>/state")
def template_state(template_id: str) -> Response:
    """Where a template's preparation stands, for its page's poll."""
    jobs = background()
    if jobs is None:
        return jsonify(state="ready", reason="")
    state = said(jobs.state(template_id))
    return jsonify(state=state.state, reason=state.reason)


def said(state: Preparation) -> Preparation:
    """A preparation's failure in the page's language (English when it was not marked)."""
    if not state.message_id:
        return state
    return replace(state, reason=gettext(state.message_id, **state.params))


@blueprint.post("/templates/<template_id>/publish")
def template_publish(template_id: str) -> Response | tuple[str, int]:
    return _set_published(template_id, True)


@blueprint.post("/templates/<template_id>/unpublish")
def template_unpublish(template_id: str) -> Response | tuple[str, int]:
    return _set_published(template_id, False)


def _set_published(template_id: str, published: bool) -> Response | tuple[str, int]:
    catalog = folder_catalog()
    if catalog is None:
        abort(404)
    ActionForm()  # the guard has checked its CSRF token
    try:
        template = catalog.get(template_id, enabled_only=False)
    except UnknownTemplate:
        abort(404)
    jobs = preparations(catalog)
    if published and not jobs.is_ready(template):
        flash(
            gettext(
                "%(name)s is still being prepared: publish it once it is ready.",
                name=template.name,
            ),
            "error",
        )
        return redirect(url_for("admin.template_edit", template_id=template_id), code=303)
    try:
        data = set_published(template, published)
    except FieldInvalid as exc:
        prepared = catalog.prepared(template)
        form = _edit_form(template, prepared)
        _mark(form, exc)
        return _edit_page(template, prepared, form, 422)
    write_template_file(template.folder, data)
    if published:
        flash(gettext("%(name)s is published: visitors can pick it now.", name=template.name), "ok")
    else:
        flash(
            gettext("%(name)s is a draft again: visitors no longer see it.", name=template.name),
            "ok",
        )
    return redirect(safe_back() or url_for("admin.templates"), code=303)


def safe_back() -> str | None:
    return safe_next(request.form.get("back"))


@blueprint.route("/templates/<template_id>", methods=["GET", "POST"])
def template_edit(template_id: str) -> Response | tuple[str, int] | str:
    jobs = background()
    if jobs is not None:
        waiting = _waiting(jobs, template_id)
        if waiting is not None:
            return waiting
    template, prepared = _template_or_404(template_id)
    editable = folder_catalog() is not None
    form = _edit_form(template, prepared)
    status = 200
    if editable and _posted():
        if form.validate_on_submit():
            try:
                data = apply_edits(template, prepared, _edits(form), services().words())
            except FieldInvalid as exc:
                _mark(form, exc)
                status = 422
            except BadInput as exc:
                flash(reason_of(exc), "error")
                status = 422
            else:
                _save(template, data, jobs)
                return redirect(url_for("admin.template_edit", template_id=template_id), code=303)
        else:
            status = 422
        if status == 422:
            flash(gettext("Not saved: see the marked fields."), "error")
    return _edit_page(template, prepared, form, status)


def _save(template: Template, data: dict[str, Any], jobs: Preparations | None) -> None:
    """Write the edit now, or (new frames: trim, speed, direction, colours, font) once the new
    version is prepared in the background, so visitors never wait for it."""
    publishing = bool(data.get("enabled", True)) and not template.enabled
    updated = parse_template(template.id, template.folder, data)
    name = updated.name  # the default language's (template.toml may name it in several)
    if jobs is not None and updated.version != template.version:
        if not jobs.start_edit(template, data):
            flash(
                gettext(
                    "%(name)s is being prepared already: try again in a moment.",
                    name=template.name,
                ),
                "error",
            )
            return
        message = (
            gettext(
                "Preparing the new frames of %(name)s: your changes are saved and published "
                "once they are ready; visitors keep the current version meanwhile.",
                name=name,
            )
            if publishing
            else gettext(
                "Preparing the new frames of %(name)s: your changes are saved once they are "
                "ready; visitors keep the current version meanwhile.",
                name=name,
            )
        )
        flash(message, "ok")
        return
    write_template_file(template.folder, data)
    if publishing:
        flash(gettext("Saved and published %(name)s: visitors can pick it now.", name=name), "ok")
    else:
        flash(gettext("Saved %(name)s.", name=name), "ok")


def _waiting(jobs: Preparations, template_id: str) -> tuple[str, int] | None:
    """The page of a template being prepared (or whose preparation failed), else None."""
    catalog = jobs.catalog
    try:
        template: Template | None = catalog.get(template_id, enabled_only=False)
    except UnknownTemplate:
        template = None
    except LoopmarkError as exc:
        broken = said(Preparation.failure(exc))
        page = render_template(
            "admin/template_state.html", template_id=template_id, template=None, state=broken
        )
        return page, 200
    if template is not None and not jobs.busy(template_id) and jobs.is_ready(template):
        failed = jobs.take_failure(template_id)
        if failed is not None:  # an edit that could not be prepared: nothing was written
            reason = said(failed).reason
            flash(gettext("Your last changes were not saved: %(reason)s", reason=reason), "error")
        return None
    state = said(jobs.state(template_id))
    if template is not None and state.state == "ready":
        return None
    if template is None and state.state != "failed":
        abort(404)
    return render_template(
        "admin/template_state.html", template_id=template_id, template=template, state=state
    ), 200


def _edit_form(template: Template, prepared: PreparedTemplate) -> TemplateEditForm:
    current = edits_of(template, prepared)
    form = TemplateEditForm(data=_form_data(current))
    choices = [SelectChoice(name, Path(name).stem) for name in caption_fonts()]
    if current.font == OWN_FONT:
        choices.insert(
            0,
            SelectChoice(
                OWN_FONT, gettext("Template's own (%(font)s)", font=template.style.font.name)
            ),
        )
    form.font.choices = choices
    return form


def _edit_page(
    template: Template, prepared: PreparedTemplate, form: TemplateEditForm, status: int
) -> tuple[str, int]:
    choices = form.font.choices or []
    return render_template(
        "admin/template_edit.html",
        template=template,
        prepared=prepared,
        form=form,
        editable=folder_catalog() is not None,
        action_form=ActionForm(),
        font_urls={choice.value: font_url(choice.value) for choice in choices},  # type: ignore[union-attr]
        sample=(template.captions[0] if template.captions else gettext("Your words here")),
        tuned_distance=_tuned_distance(template, prepared),
        brand_budget=_brand_budget(),
        stabilise_range=STABILISE_DISTANCE,
        palette_trial=_palette_trial_text(template, prepared),
    ), status


def _tuned_distance(template: Template, prepared: PreparedTemplate) -> str | None:
    """The stabilise distance preparation tuned (the prepared artifacts' manifest, through the
    catalog), as the editor shows it; None when it was never tuned for these frames."""
    if prepared.stabilise_tuned:
        distance: float | None = prepared.stabilise_distance
    else:
        catalog = folder_catalog()
        distance = None if catalog is None else catalog.tuned_stabilise_distance(template)
    return None if distance is None else f"{distance:g}"


def _palette_trial_text(template: Template, prepared: PreparedTemplate) -> str | None:
    """What preparation measured of a palette per span on these frames, in the page's words:
    this version's (spans on), else the same template's with spans on when it was prepared
    (the catalog's); None when it was never measured."""
    if template.palette_spans:
        trial: PaletteTrial | None = recorded_palette_trial(prepared.folder)
    else:
        catalog = folder_catalog()
        trial = None if catalog is None else catalog.palette_trial(template)
    if trial is None:
        return None
    if trial.ssim_change is None or trial.bytes_change is None:
        return gettext(
            "These frames are too few to try it (it takes %(needed)d; this loop has %(count)d): "
            "they keep one palette.",
            needed=MIN_TRIAL_FRAMES,
            count=prepared.frame_count,
        )
    effect = {
        "ssim": format_decimal(trial.ssim_change, format="+0.0000;-0.0000"),
        "bytes": format_percent(trial.bytes_change, format="+0.0 %;-0.0 %"),
    }
    kept = trial.palettes > 1
    if template.palette_spans and kept:
        return gettext(
            "Measured on these frames (without a caption): a palette per span gave %(ssim)s SSIM "
            "for %(bytes)s bytes against one palette, so they use it.",
            **effect,
        )
    if template.palette_spans:
        return gettext(
            "Measured on these frames (without a caption): a palette per span gave %(ssim)s SSIM "
            "for %(bytes)s bytes against one palette, not worth its bytes, so they keep one "
            "palette.",
            **effect,
        )
    if kept:
        return gettext(
            "Measured when it was last on for these frames (without a caption): a palette per "
            "span gave %(ssim)s SSIM for %(bytes)s bytes against one palette, and they used it.",
            **effect,
        )
    return gettext(
        "Measured when it was last on for these frames (without a caption): a palette per span "
        "gave %(ssim)s SSIM for %(bytes)s bytes against one palette, not worth its bytes.",
        **effect,
    )


def _brand_budget() -> str:
    """The brand's GIF budget, as the editor names it (a template without its own gets it)."""
    budget = services().settings.brand.max_gif_bytes
    return gettext("none") if budget is None else format_gif_budget(budget)


def _mark(form: TemplateEditForm | TemplateUploadForm, problem: FieldInvalid) -> None:
    """Show a refusal next to its field (marked aria-invalid), or above the form."""
    field = getattr(form, problem.field, None) if problem.field else None
    if field is None:
        flash(problem.reason, "error")
        return
    field.errors = [*field.errors, problem.reason]


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
        "loop": edits.loop,
        "speed": Decimal(str(edits.speed)),
        "trim_start": Decimal(str(edits.trim_start)),
        "trim_duration": Decimal(str(edits.trim_duration)),
        "stabilise_distance": (
            None if edits.stabilise_distance is None else Decimal(str(edits.stabilise_distance))
        ),
        "max_gif_bytes": (
            "" if edits.max_gif_bytes is None else format_gif_budget(edits.max_gif_bytes)
        ),
        "palette_spans": edits.palette_spans,
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
        loop=form.loop.data,
        speed=float(_given_decimal(form.speed.data)),
        trim_start=float(_given_decimal(form.trim_start.data)),
        trim_duration=float(_given_decimal(form.trim_duration.data)),
        stabilise_distance=(
            None if form.stabilise_distance.data is None else float(form.stabilise_distance.data)
        ),
        # Validated by the form (gif_budget_text); empty: the brand's.
        max_gif_bytes=_budget_of(form.max_gif_bytes.data),
        palette_spans=bool(form.palette_spans.data),
        publish=bool(request.form.get("publish")),
    )


def _budget_of(text: str | None) -> int | None:
    """The form's GIF budget in bytes (validated by gif_budget_text); None: empty, the brand's."""
    text = (text or "").strip()
    return parse_gif_budget(text) if text else None


def _given_decimal(value: Decimal | None) -> Decimal:
    if value is None:
        raise BadInput("a required number is missing")
    return value


@blueprint.route("/templates/new", methods=["GET", "POST"])
@allows_body(UPLOAD_MAX_BYTES)
def template_new() -> Response | tuple[str, int] | tuple[Response, int]:
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
                template = _add(form, catalog)
            except BadInput as exc:
                _mark(form, _upload_problem(exc))
            except ToolFailed as exc:
                log.warning("template upload failed: %s %s", exc.reason, exc.stderr[-400:])
                unreadable = gettext("This video could not be read; try another file.")
                _mark(form, FieldInvalid("video", unreadable))
            else:
                preparations(catalog).start(template.id, remove_on_failure=True)
                location = url_for("admin.template_edit", template_id=template.id)
                message = gettext(
                    "Uploaded %(name)s: it is a draft, hidden from visitors, until you publish it.",
                    name=template.name,
                )
                flash(message, "ok")  # shown by the template's page, however it is reached
                if wants_json():
                    return jsonify(location=location), 201
                return redirect(location, code=303)
        _close_uploads()
        if wants_json():
            return jsonify(
                fields={field.name: list(field.errors) for field in form if field.errors},
                errors=_flashed_errors(),
            ), 422
        flash(gettext("Not uploaded: see the marked fields."), "error")
    return render_template("admin/template_new.html", form=form), status


def _flashed_errors() -> list[str]:
    """Messages flashed for the form (taken, so the next page does not show them again)."""
    return [str(m) for m in get_flashed_messages(category_filter=["error"])]


# The authoring code's refusals name the CLI's options (OptionRejected.option); the form marks
# its own field and names it in the page's words and language.
_UPLOAD_OPTIONS = {
    "--start": ("start", N_("The start")),
    "--duration": ("duration", N_("The duration")),
    "--width": ("width", N_("The width")),
    "--fps": ("fps", N_("The frame rate")),
    "--frame": ("frame", N_("The branding frame")),
    "template": ("template_id", N_("The template id")),
}


def _upload_problem(exc: BadInput) -> FieldInvalid:
    """A refused upload as a message beside its field, in the page's language (the video's
    field when the refusal names no option: the probe's refusals)."""
    if isinstance(exc, OptionRejected) and exc.option in _UPLOAD_OPTIONS:
        field, label = _UPLOAD_OPTIONS[exc.option]
        return FieldInvalid(
            field, gettext(exc.message_id, **{**exc.params, "option": gettext(label)})
        )
    return FieldInvalid("video", reason_of(exc))


def _close_uploads() -> None:
    """A refused upload's spooled files are closed now, not whenever they are collected."""
    for upload in request.files.values():
        upload.close()


def _add(form: TemplateUploadForm, catalog: DirectoryTemplateCatalog) -> Template:
    """Probe and copy the upload into a new draft's folder; preparing it is the caller's."""
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
            published=False,
        )
        return create_template(spec, catalog.templates_dir)
