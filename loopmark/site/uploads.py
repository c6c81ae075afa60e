"""Visitor uploads over the JSON API (issue 13): declare a file, send it, render a trim of it.

- ``POST /api/uploads`` ``{filename, content_type, size}`` → 201 ``{id, upload: {url, fields},
  max_bytes, expires_in}``; 413/415 for a declared size or type we refuse, before any byte.
- ``POST /api/uploads/<n>?token=…`` (``upload.url`` with local storage): ``multipart/form-data``
  with the ``fields`` first and the ``file`` last. The signed token carries the declared size, so
  the body is bounded by it before it is read (a Content-Length over it: 413 at once; a chunked
  body: 413 while streaming); the file is probed before it is stored.
- ``POST /api/renders`` ``{upload, start, duration, caption?}`` (dispatched here by api.py) →
  the same answers as a template render.
- ``POST /api/convert`` (multipart ``file``, ``start``, ``duration``, ``caption?``): the whole
  job in one request, 200 when the render is done within the hold time, else 202 to poll.

An upload ``id`` is signed (itsdangerous) and carries its visitor: another visitor's id is
refused (403), a forged or expired one is unknown (404). Uploaded files are never served.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.wrappers import Response

from loopmark.errors import N_, BadInput
from loopmark.service.render_service import RenderOutcome
from loopmark.service.uploads import (
    MAX_PENDING_UPLOADS_PER_VISITOR,
    UPLOAD_TTL_SECONDS,
    UPLOAD_URL_SECONDS,
    UploadMissing,
    UploadService,
    check_upload_id,
    new_upload_id,
)
from loopmark.site.api import InvalidRequest, hold_slots, json_object, outcome_response
from loopmark.web import limits
from loopmark.web.context import services
from loopmark.web.server import VIEW_BODY_LIMIT_ATTRIBUTE

blueprint = Blueprint("uploads", __name__, url_prefix="/api")

ID_SALT = "loopmark.upload-id"
FORM_SALT = "loopmark.upload-form"
ADMISSION_EXTENSION = "loopmark.upload_admission"
# Room for the form's other fields and the multipart framing around the file.
FORM_OVERHEAD_BYTES = 64 * 1024
# Werkzeug's multipart parser holds up to this much unparsed data at once (64 KB reads).
FORM_MEMORY_BYTES = 500_000
MAX_ID_CHARS = 300
MAX_CAPTION_FIELD_CHARS = 4000


class UploadForbidden(BadInput):
    code = "upload_forbidden"
    http_status = 403


def init_app(app: Flask) -> None:
    """Register the routes when uploads are on, with their body bounds and upload limits."""
    settings = services(app).settings
    if not settings.uploads:
        return
    app.register_blueprint(blueprint)
    bound = settings.upload_max_bytes + FORM_OVERHEAD_BYTES
    for endpoint in ("uploads.receive_upload", "uploads.convert"):
        setattr(app.view_functions[endpoint], VIEW_BODY_LIMIT_ATTRIBUTE, bound)
    app.extensions[ADMISSION_EXTENSION] = limits.RenderAdmission(
        MovingWindowRateLimiter(MemoryStorage()),
        settings.upload_rate_limit,
        settings.address_limit_factor,
        settings.upload_admission,
    )


def _service() -> UploadService:
    return services().uploads


def _admit_upload() -> None:
    """Count an upload against the visitor's, the address's and the site's upload limits."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    admission: limits.RenderAdmission = current_app.extensions[ADMISSION_EXTENSION]
    admission.admit(limits.visitor_key(), limits.client_address())


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt=salt)


def _sign_id(upload_id: str) -> str:
    return _serializer(ID_SALT).dumps([upload_id, limits.visitor_id() or ""])


def _unsign(
    salt: str, token: str, max_age_s: int, *, expired: BadInput, bad: BadInput
) -> tuple[object, object]:
    """The pair a signed token carries; ``expired`` or ``bad`` raised when it is not valid."""
    try:
        first, second = _serializer(salt).loads(token, max_age=max_age_s)
    except SignatureExpired:
        raise expired from None
    except (BadSignature, ValueError, TypeError):
        raise bad from None
    return first, second


def _open_id(signed: object) -> str:
    """The upload behind a signed id, for this visitor only."""
    if not isinstance(signed, str) or not signed or len(signed) > MAX_ID_CHARS:
        raise InvalidRequest(N_("Field 'upload' must be the id POST /api/uploads answered."))
    upload_id, owner = _unsign(
        ID_SALT,
        signed,
        UPLOAD_TTL_SECONDS,
        expired=UploadMissing(N_("That upload has expired; please upload the clip again.")),
        bad=UploadMissing(N_("There is no upload with this id.")),
    )
    if owner and owner != limits.visitor_id():
        raise UploadForbidden(N_("That upload belongs to someone else."))
    return check_upload_id(str(upload_id))


# -- POST /api/uploads -------------------------------------------------------------------------


@blueprint.post("/uploads")
def create_upload() -> Response:
    body = json_object()
    filename = body.get("filename", "")
    content_type = body.get("content_type")
    size = body.get("size")
    if not isinstance(filename, str):
        raise InvalidRequest(N_("Field 'filename' must be a string."))
    if not isinstance(content_type, str):
        raise InvalidRequest(N_("Field 'content_type' must be the file's type, such as video/mp4."))
    if isinstance(size, bool) or not isinstance(size, int):
        raise InvalidRequest(N_("Field 'size' must be the file's size in bytes."))
    service = _service()
    service.check_declared(filename, content_type, size)
    _admit_upload()
    upload_id = new_upload_id()
    # 503 uploads_full when unprocessed ones fill the cap; 429 uploads_pending when this
    # visitor has announced uploads enough that are not sent yet (an address without a
    # visitor's token: as many as the address's share of the limits).
    max_pending = MAX_PENDING_UPLOADS_PER_VISITOR
    if limits.visitor_id() is None:
        max_pending *= int(current_app.config["ADDRESS_LIMIT_FACTOR"])
    limited = current_app.config.get("RATELIMIT_ENABLED", True)
    visitor = limits.visitor_key() if limited else None
    service.reserve_incoming(upload_id, size, visitor=visitor, max_pending=max_pending)
    try:
        direct = service.direct_upload(upload_id, size=size, content_type=content_type)
    except BaseException:
        service.release_incoming(upload_id)  # no upload URL: nothing is on its way
        raise
    if direct is None:
        # The signed token (upload id, declared size, issue time) is in the URL, so the body
        # is bounded by the declared size before a byte of it is read.
        token = _serializer(FORM_SALT).dumps([upload_id, size])
        url = url_for("uploads.receive_upload", upload_id=upload_id, token=token)
        fields: dict[str, str] = {}
    else:
        url, fields = direct  # S3 enforces the key, size and type of its signed policy
    response = jsonify(
        {
            "id": _sign_id(upload_id),
            "upload": {"url": url, "fields": fields},
            "max_bytes": service.max_bytes,
            "expires_in": UPLOAD_URL_SECONDS,
        }
    )
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the upload form (local storage) -----------------------------------------------------------


@blueprint.post("/uploads/<upload_id>")
def receive_upload(upload_id: str) -> Response:
    """The file, bounded by its declared size; probed, then stored. 201 with what the scrubber
    needs (the clip's size and duration), 4xx with the reason otherwise."""
    check_upload_id(upload_id)
    declared = _declared_size(upload_id)
    request.max_content_length = declared + FORM_OVERHEAD_BYTES
    request.max_form_memory_size = FORM_MEMORY_BYTES
    try:
        info = _with_file(lambda path: _service().store(upload_id, path, declared_size=declared))
    except BaseException:
        _service().release_incoming(upload_id)  # refused before it was stored
        raise
    response = jsonify(
        {
            "status": "uploaded",
            "width": info.width,
            "height": info.height,
            "duration": round(info.duration_s, 3),
            "max_seconds": _service().max_seconds,
        }
    )
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


def _declared_size(upload_id: str) -> int:
    """The size declared for this upload, from the signed token in the upload URL's query
    string: known before the body is read, so the body is bounded by it from the start."""
    token_id, size = _unsign(
        FORM_SALT,
        request.args.get("token", ""),
        UPLOAD_URL_SECONDS,
        expired=UploadMissing(N_("This upload address has expired; please start again.")),
        bad=UploadForbidden(N_("This upload address is not valid.")),
    )
    if token_id != upload_id or isinstance(size, bool) or not isinstance(size, int):
        raise UploadForbidden(N_("This upload address is not valid."))
    return size


def _with_file(use: Callable[[Path], Any]) -> Any:
    """Copy the form's ``file`` to a private temporary file, hand its path to ``use``, and
    delete it afterwards whatever happens."""
    file = request.files.get("file")
    if not isinstance(file, FileStorage):
        _close_files()
        raise InvalidRequest(N_("The form must carry the video as its 'file' field."))
    folder = Path(tempfile.mkdtemp(prefix="loopmark-incoming-"))
    try:
        path = folder / "upload"
        with open(path, "wb") as out:
            shutil.copyfileobj(file.stream, out, 1024 * 1024)
        _close_files()  # Werkzeug's spooled copy goes at once, not at the end of the request
        return use(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _close_files() -> None:
    for file in request.files.values():
        file.close()


# -- POST /api/renders {upload, ...} -----------------------------------------------------------


def create_upload_render(body: dict[str, Any]) -> Response:
    """A render of a trim of an upload (called by api.create_render for bodies with 'upload')."""
    upload_id = _open_id(body.get("upload"))
    start, duration = _number(body, "start", text=False), _number(body, "duration", text=False)
    caption = _caption(body.get("caption", ""))
    return _render(upload_id, start, duration, caption)


def _render(upload_id: str, start: float, duration: float, caption: str) -> Response:
    slots = hold_slots(current_app)
    holding = slots.acquire(blocking=False)
    try:
        wait_s = float(current_app.config["RENDER_WAIT_SECONDS"]) if holding else 0.0
        outcome: RenderOutcome = _service().request_render(
            upload_id,
            start_s=start,
            duration_s=duration,
            caption=caption,
            wait_s=wait_s,
            admit=limits.admit_render,
        )
    finally:
        if holding:
            slots.release()
    return outcome_response(outcome, cacheable=False)


# -- POST /api/convert -------------------------------------------------------------------------


@blueprint.post("/convert")
def convert() -> Response:
    """Upload and render in one multipart request: 200 done, 202 to poll, 4xx why not."""
    service = _service()
    request.max_content_length = service.max_bytes + FORM_OVERHEAD_BYTES
    request.max_form_memory_size = FORM_MEMORY_BYTES
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType(N_("Send multipart/form-data: file, start, duration, caption."))
    _admit_upload()
    upload_id = new_upload_id()
    # Counted before a byte of the body is read: reading the form reads (and spools) all of it.
    service.reserve_incoming(upload_id, request.content_length or service.max_bytes)
    try:
        start = _number(request.form, "start")
        duration = _number(request.form, "duration")
        caption = _caption(request.form.get("caption", ""))
        _with_file(lambda path: service.store(upload_id, path))
    except BaseException:
        service.release_incoming(upload_id)  # a bad field, no file, or a body cut short
        raise
    return _render(upload_id, start, duration, caption)


# -- fields ------------------------------------------------------------------------------------


def _number(fields: Any, name: str, *, text: bool = True) -> float:
    """A finite number of seconds from JSON (a number) or, with ``text``, a form (its text)."""
    value = fields.get(name)
    if text and isinstance(value, str) and len(value) <= 32:
        try:
            value = float(value)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(
            N_("Field %(name)r must be a number of seconds."), params={"name": name}
        )
    number = float(value)
    if not math.isfinite(number):
        raise InvalidRequest(
            N_("Field %(name)r must be a finite number of seconds."), params={"name": name}
        )
    return number


def _caption(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(N_("Field 'caption' must be a string."))
    if len(value) > MAX_CAPTION_FIELD_CHARS:
        raise InvalidRequest(N_("Field 'caption' is far too long."))
    return value
