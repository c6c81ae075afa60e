"""Errors at the HTTP edge: domain errors and HTTP exceptions become a status and a reason.

API paths answer ``{"error": {"code", "message"}}``; pages render ``404.html`` (every 4xx) or
``500.html`` (every 5xx) with ``message``. Overload and outages carry ``Retry-After``. Nothing
answers with a traceback: an unexpected exception is logged and becomes a plain 500.
"""

from __future__ import annotations

import logging
import re
from html import escape

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from loopmark.errors import (
    N_,
    BackendUnavailable,
    BadInput,
    ConfigInvalid,
    DispatchUnavailable,
    LoopmarkError,
    QueueFull,
    RecordsUnavailable,
    StorageUnavailable,
    TemplateInvalid,
    ToolFailed,
    UnknownTemplate,
)
from loopmark.service.render_service import RenderBlocked, TemplateChanged

log = logging.getLogger(__name__)

# A backend outage is usually short (a restart, a failover); ask clients back soon.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5
# A render that failed in a tool may pass on a retry; past MAX_ATTEMPTS it is refused for good.
RENDER_RETRY_AFTER_SECONDS = 2
JSON_PATH_PREFIXES = ("/api/", "/graphql")
INTERNAL_MESSAGE = N_("Something went wrong on our side.")
# The error code and message of each HTTP error, whether the app gives it or the server does
# before the app sees the request (loopmark.web.server: a request it cannot read).
HTTP_CODES = {
    400: ("bad_request", N_("The request could not be understood.")),
    404: ("not_found", N_("There is nothing here.")),
    405: ("method_not_allowed", N_("This address does not take that method.")),
    408: ("request_timeout", N_("The request took too long to arrive; please try again.")),
    413: ("body_too_large", N_("The request body is too large.")),
    414: ("request_uri_too_large", N_("The address is too long.")),
    415: ("unsupported_media_type", N_("Send the request body as application/json.")),
    429: ("rate_limited", N_("Too many requests; please wait a moment.")),
    431: ("request_header_fields_too_large", N_("The request's headers are too large.")),
    500: ("internal_error", INTERNAL_MESSAGE),
    501: ("not_implemented", N_("The request asks for something this server does not do.")),
    505: ("http_version_not_supported", N_("This HTTP version is not supported.")),
}
UNAVAILABLE_MESSAGE = N_("The service is busy or briefly unavailable; please try again shortly.")
TOOL_FAILED_MESSAGE = N_("This GIF could not be made just now; please try again.")


def init_app(app: Flask) -> None:
    app.register_error_handler(LoopmarkError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


def wants_json() -> bool:
    """API clients get JSON errors; browsers on pages get the HTML error pages."""
    if request.path.startswith(JSON_PATH_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > 0


def error_response(
    status: int, code: str, message: str, *, retry_after_s: int | None = None
) -> Response:
    """The error in the form this request wants (JSON or an HTML page)."""
    if wants_json():
        response = jsonify({"error": {"code": code, "message": message}})
        response.status_code = status
    else:
        response = _html_error(status, message)
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(retry_after_s)
    return response


def reason_of(exc: LoopmarkError) -> str:
    """The error's reason in the request's language (English when the catalogue lacks it).
    Error *codes* never change with the language: clients branch on them."""
    return gettext(exc.message_id, **exc.params)


def status_of(exc: LoopmarkError) -> tuple[int, int | None]:
    """The HTTP status of a domain error, and its Retry-After in seconds (None: no header)."""
    declared = getattr(exc, "http_status", None)
    if isinstance(declared, int):
        return declared, None  # an edge error that names its own status (malformed JSON: 400)
    if isinstance(exc, QueueFull):
        return 429, exc.retry_after_s
    if isinstance(exc, DispatchUnavailable | BackendUnavailable) and exc.retry_after_s is not None:
        return 503, exc.retry_after_s
    if isinstance(exc, StorageUnavailable | RecordsUnavailable | DispatchUnavailable):
        return 503, UNAVAILABLE_RETRY_AFTER_SECONDS
    if isinstance(exc, ToolFailed):
        return 503, RENDER_RETRY_AFTER_SECONDS
    if isinstance(exc, TemplateChanged):
        return 409, None
    if isinstance(exc, RenderBlocked):
        return 410, None
    if isinstance(exc, ConfigInvalid):
        return 500, None  # the server's configuration, not the visitor's input
    if isinstance(exc, TemplateInvalid) and request.method in ("GET", "HEAD"):
        return 500, None  # a broken template folder met by a visitor (admin forms: 422)
    if isinstance(exc, UnknownTemplate) and request.method in ("GET", "HEAD"):
        return 404, None
    if isinstance(exc, BadInput):
        return 422, None
    return 500, None


def _domain_error(exc: LoopmarkError) -> Response:
    status, retry_after_s = status_of(exc)
    if status >= 500:
        # Keep the backend's own exception (the cause) in the log, never in the answer.
        log.error("%s: %s", exc.code, exc.reason, exc_info=exc)
    if status == 500:
        message = gettext(INTERNAL_MESSAGE)
    elif isinstance(exc, StorageUnavailable | RecordsUnavailable | DispatchUnavailable):
        message = gettext(UNAVAILABLE_MESSAGE)
    elif isinstance(exc, ToolFailed):
        message = gettext(TOOL_FAILED_MESSAGE)
    else:
        message = reason_of(exc)
    return error_response(status, exc.code, message, retry_after_s=retry_after_s)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    known = HTTP_CODES.get(status)
    if known is not None:
        code, message = known[0], gettext(known[1])
    else:
        code, message = _snake(exc.name), exc.description or exc.name
    if status == 413:
        limit = request.max_content_length
        if limit:
            message = gettext("The request body is larger than %(kb)d KB.", kb=limit // 1024)
    if status >= 500:
        log.error("HTTP %s on %s %s", status, request.method, request.path, exc_info=exc)
        message = gettext(INTERNAL_MESSAGE)
    response = error_response(status, code, message)
    for name, value in exc.get_headers():
        if name.lower() in ("allow", "retry-after", "www-authenticate"):
            response.headers[name] = value
    return response


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
    return error_response(500, "internal_error", gettext(INTERNAL_MESSAGE))


def _html_error(status: int, message: str) -> Response:
    template = "500.html" if status >= 500 else "404.html"
    try:
        body = render_template(template, message=message, status=status)
    except Exception:
        # The error page itself failed (a template bug): a bare page still beats a traceback.
        log.exception("error page %s failed to render", template)
        body = f"<!doctype html><meta charset=utf-8><title>Loopmark</title><p>{escape(message)}</p>"
    return current_app.response_class(body, status=status, mimetype="text/html")


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "error"
