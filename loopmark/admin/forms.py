"""The admin's forms (Flask-WTF): every POST carries the session's CSRF token.

The admin's guard checks the token before any view runs; a form's ``validate_on_submit`` then
only checks its fields. Search forms are GET forms without a token.
"""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DecimalField,
    Field,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # not in types-WTForms 3.2
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    StopValidation,
    ValidationError,
)

from loopmark.admin.template_files import parse_gif_budget
from loopmark.records.words import MAX_RAW_WORD_CHARS, WORD_KINDS
from loopmark.renderer.render import KEY_CHARS
from loopmark.renderer.templates import (
    BOX_H,
    BOX_W,
    BOX_X,
    BOX_Y,
    CAPTION_MODES,
    LOOP_STYLES,
    MAX_LINES,
    MAX_SIZE,
    MIN_SIZE,
    OUTPUT_FPS,
    OUTPUT_SPEED,
    OUTPUT_WIDTH,
    STABILISE_DISTANCE,
    STROKE_WIDTH,
    TRIM_DURATION,
    TRIM_START,
    FieldRange,
)
from loopmark.service.passwords import MAX_PASSWORD_CHARS


def _l(message: str) -> str:
    """A label said in each request's language: Flask-Babel's lazy string, which WTForms renders
    like a str (typed as one for WTForms' signatures)."""
    return cast(str, lazy_gettext(message))


def within(bounds: FieldRange) -> NumberRange:
    """The form's check of a template field: the renderer's own range (which WTForms also
    renders as the input's min and max)."""
    return NumberRange(bounds.lo, bounds.hi)


KEY_PATTERN = rf"^[a-z2-7]{{{KEY_CHARS}}}$"
COLOUR_PATTERN = r"^#[0-9a-fA-F]{6}$"
MAX_REASON_CHARS = 200
MAX_SEARCH_CHARS = 80
# What a ticked checkbox may post: WTForms' own "y", and what browsers and scripts send.
CHECKED_VALUES = ("y", "on", "true", "1")


def finite(form: FlaskForm, field: Field) -> None:
    """Refuse NaN and infinities before NumberRange sees them (a signalling NaN makes it raise)."""
    if field.data is not None and not field.data.is_finite():
        raise StopValidation(gettext("Please enter a number."))


def on_or_off(form: FlaskForm, field: BooleanField) -> None:
    """A checkbox posts its value ("y") or nothing: refuse any other, rather than read it as on."""
    posted = field.raw_data[0] if field.raw_data else ""
    if posted not in (*CHECKED_VALUES, *field.false_values):
        raise StopValidation(gettext("Tick the box, or leave it empty."))


def gif_budget_text(form: FlaskForm, field: Field) -> None:
    """A GIF size budget as typed (``8 MB``, ``8000000``, ``0``), checked as brand.toml's is."""
    try:
        parse_gif_budget(field.data or "")
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


MAX_NAME_CHARS = 60
MAX_BUDGET_CHARS = 40
MAX_CREDIT_CHARS = 200
MAX_CAPTIONS_CHARS = 4000
# The word lists' names as the admin reads them (the records call them banned and allowed).
WORD_KIND_LABELS = {"banned": _l("Forbidden"), "allowed": _l("Allowed exceptions")}
WORD_KIND_CHOICES = [SelectChoice(kind, WORD_KIND_LABELS.get(kind, kind)) for kind in WORD_KINDS]
LOOP_LABELS = {
    "forward": _l("Forwards"),
    "reverse": _l("Backwards (reversed)"),
    "boomerang": _l("Forwards, then back (boomerang)"),
}


class LoginForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=40)])
    password = PasswordField(
        _l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_CHARS)]
    )


class ActionForm(FlaskForm):
    """A button that only needs the CSRF token (log out, enable a template)."""


class RenderSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form: searching changes nothing

    q = StringField(_l("Caption contains"), validators=[Optional(), Length(max=MAX_SEARCH_CHARS)])
    template = SelectField(_l("Template"), choices=[], validate_choice=False)
    before = DecimalField(_l("Before"), validators=[Optional()])


class KeyForm(FlaskForm):
    key = HiddenField(validators=[DataRequired(), Regexp(KEY_PATTERN, message="not a render key")])
    back = HiddenField()


class MoveForm(KeyForm):
    direction = HiddenField(
        validators=[DataRequired(), Regexp(r"^(up|down|top|bottom)$", message="up or down")]
    )


class TakeDownForm(FlaskForm):
    reason = StringField(
        _l("Reason (kept with the blocked key)"),
        validators=[DataRequired(), Length(max=MAX_REASON_CHARS)],
    )


class TakeDownLinkForm(TakeDownForm):
    target = StringField(_l("Render key or link"), validators=[DataRequired(), Length(max=400)])


class WordForm(FlaskForm):
    kind = SelectField(_l("List"), choices=WORD_KIND_CHOICES)
    word = StringField(_l("Word"), validators=[DataRequired(), Length(max=MAX_RAW_WORD_CHARS)])


class WordImportForm(FlaskForm):
    kind = SelectField(_l("List"), choices=WORD_KIND_CHOICES)
    file = FileField(_l("Text file, one word per line"), validators=[FileRequired()])
    replace = BooleanField(_l("Replace the whole list (otherwise add to it)"))


class TemplateEditForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=MAX_NAME_CHARS)])
    credit = StringField(_l("Credit"), validators=[Optional(), Length(max=MAX_CREDIT_CHARS)])
    caption_mode = SelectField(
        _l("Captions"),
        choices=[
            SelectChoice(
                mode, _l("Free text") if mode == "free" else _l("Only the predefined captions")
            )
            for mode in CAPTION_MODES
        ],
    )  # fmt: skip
    captions = TextAreaField(
        _l("Predefined captions, one per line"),
        validators=[Optional(), Length(max=MAX_CAPTIONS_CHARS)],
    )
    box_x = IntegerField(_l("Box x"), validators=[InputRequired(), within(BOX_X)])
    box_y = IntegerField(_l("Box y"), validators=[InputRequired(), within(BOX_Y)])
    box_w = IntegerField(_l("Box width"), validators=[InputRequired(), within(BOX_W)])
    box_h = IntegerField(_l("Box height"), validators=[InputRequired(), within(BOX_H)])
    font = SelectField(_l("Font"), choices=[])
    fill = StringField(_l("Text colour"), validators=[DataRequired(), Regexp(COLOUR_PATTERN)])
    stroke = StringField(_l("Outline colour"), validators=[DataRequired(), Regexp(COLOUR_PATTERN)])
    stroke_width = IntegerField(
        _l("Outline width"), validators=[InputRequired(), within(STROKE_WIDTH)]
    )
    align = SelectField(
        _l("Alignment"),
        choices=[
            SelectChoice("left", _l("Left")),
            SelectChoice("center", _l("Centre")),
            SelectChoice("right", _l("Right")),
        ],
    )
    max_lines = IntegerField(_l("Lines at most"), validators=[InputRequired(), within(MAX_LINES)])
    max_size = IntegerField(_l("Largest size (px)"), validators=[InputRequired(), within(MAX_SIZE)])
    min_size = IntegerField(
        _l("Smallest size (px)"), validators=[InputRequired(), within(MIN_SIZE)]
    )
    loop = SelectField(_l("Plays"), choices=[SelectChoice(s, LOOP_LABELS[s]) for s in LOOP_STYLES])
    speed = DecimalField(
        _l("Speed (1 = as filmed)"),
        places=2,
        validators=[InputRequired(), finite, within(OUTPUT_SPEED)],
    )
    trim_start = DecimalField(
        _l("Start in the video (s)"),
        places=2,
        validators=[InputRequired(), finite, within(TRIM_START)],
    )
    trim_duration = DecimalField(
        _l("Length (s)"), places=2, validators=[InputRequired(), finite, within(TRIM_DURATION)]
    )
    # Empty: tuned at preparation (the tuned value is the placeholder).
    stabilise_distance = DecimalField(
        _l("Stabilise distance"),
        places=1,
        validators=[
            Optional(),
            finite,
            NumberRange(
                STABILISE_DISTANCE.lo,
                STABILISE_DISTANCE.hi,
                # The same sentence as template_files.check_output's.
                message=_l(
                    "The stabilise distance goes from %(min)g to %(max)g; leave it empty to have "
                    "it tuned automatically."
                ),
            ),
        ],
    )
    # Empty: the brand's budget; 0: none.
    max_gif_bytes = StringField(
        _l("GIF size budget"),
        validators=[Optional(), Length(max=MAX_BUDGET_CHARS), gif_budget_text],
    )
    # Off: one palette for every frame (no trial at preparation).
    palette_spans = BooleanField(_l("Try a palette per span of frames"), validators=[on_or_off])


class TemplateUploadForm(FlaskForm):
    template_id = StringField(
        _l("Id (lowercase letters, digits, dashes)"),
        validators=[
            DataRequired(),
            Regexp(r"^[a-z0-9][a-z0-9-]{0,39}$", message=_l("1–40 of a-z, 0-9, -")),
        ],
    )
    name = StringField(_l("Name"), validators=[Optional(), Length(max=MAX_NAME_CHARS)])
    video = FileField(
        _l("Loop video (MP4, MOV, WebM, MKV or GIF, at most 25 MB)"), validators=[FileRequired()]
    )
    frame = FileField(_l("Branding frame (PNG with transparency, optional)"))
    start = DecimalField(
        _l("Start (s)"),
        default=Decimal(0),
        validators=[InputRequired(), finite, within(TRIM_START)],
    )
    duration = DecimalField(
        _l("Duration (s)"), validators=[Optional(), finite, within(TRIM_DURATION)]
    )
    width = IntegerField(
        _l("Width (px)"),
        default=int(OUTPUT_WIDTH.default),
        validators=[InputRequired(), within(OUTPUT_WIDTH)],
    )
    fps = IntegerField(
        _l("Frames per second"),
        default=int(OUTPUT_FPS.default),
        validators=[InputRequired(), within(OUTPUT_FPS)],
    )
