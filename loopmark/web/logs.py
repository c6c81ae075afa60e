"""Per-request observation: the request id, one JSON access-log line, and request counters.

The request id comes from a well-formed ``X-Request-Id`` header (a load balancer's) or is made
here; it is echoed back and stamped on every log record written while the request runs. A view
that works on a render sets ``g.render_key`` and the access line carries it, with the calls the
request sent to each backend through its circuit breaker (``records_calls``, ``storage_calls``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any, cast

from flask import Flask, Response, current_app, g, has_request_context, request
from prometheus_client import CollectorRegistry, Counter, Histogram

from loopmark.service.breaker import calls_sent, request_begins, request_ends

PACKAGE_LOGGER = "loopmark"
ACCESS_LOGGER = "loopmark.site.access"
REQUEST_ID_HEADER = "X-Request-Id"
METRICS_EXTENSION = "loopmark.request_metrics"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Request durations: cache hits take milliseconds, a held render request up to ~2 s.
REQUEST_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0)
# Record attributes every LogRecord has; anything else was passed as ``extra`` and is logged.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields.

    Every request writes one (the access line), so it is kept cheap: one shared encoder, and
    the time's text made once per second (about a fifth of the old cost of a line)."""

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")  # a second and its text, swapped as one

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.time_text(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRS and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)

    def time_text(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond, as ``datetime.isoformat`` writes it."""
        second = int(created)
        micros = round((created - second) * 1e6)  # datetime's rounding, then truncation
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        cached = self._second  # one read: threads format lines outside any lock
        if cached[0] != second:
            text = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
            cached = self._second = (second, text.removesuffix("+00:00"))
        return f"{cached[1]}.{micros // 1000:03d}+00:00"


class RequestContextFilter(logging.Filter):
    """Stamps the current request's id (and render key, once known) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            request_id = g.get("request_id")
            if request_id and not hasattr(record, "request_id"):
                record.request_id = request_id
            render_key = g.get("render_key")
            if render_key and not hasattr(record, "render_key"):
                record.render_key = render_key
        return True


class RequestMetrics:
    """Request counters for /metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "loopmark_http_requests",
            "HTTP requests answered, by endpoint, method and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "loopmark_http_request_seconds",
            "Time to answer an HTTP request, by endpoint",
            ["endpoint"],
            buckets=REQUEST_SECONDS_BUCKETS,
            registry=self.registry,
        )

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one request and its time (each label set's children looked up once)."""
        children = self._children.get((endpoint, method, status))
        if children is None:
            children = (
                self.requests.labels(endpoint, method, str(status)),
                self.seconds.labels(endpoint),
            )
            self._children[(endpoint, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (pytest and embedders swap it), not to the
    stream that was current when the handler was made."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass

    def write_line(self, entry: dict[str, Any]) -> None:
        """Write one JSON entry as ``emit`` would write a record formatted to it."""
        line = _ENCODER.encode(entry) + self.terminator
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            try:
                stream = self.stream
                stream.write(line)
                stream.flush()
            except Exception:  # noqa: BLE001 - as logging does: reported, never raised
                self.handleError(logging.makeLogRecord({"msg": line}))


def init_app(app: Flask) -> None:
    if app.config.get("JSON_LOGS", True):
        configure_logging()
    app.extensions[METRICS_EXTENSION] = RequestMetrics()
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_end)


def configure_logging(name: str = PACKAGE_LOGGER) -> None:
    """JSON lines on stderr for the ``name`` logger (``loopmark``); idempotent, and it leaves
    the root logger alone, so pytest's caplog and an embedding application keep working."""
    logger = logging.getLogger(name)
    if any(getattr(handler, "_loopmark_json", False) for handler in logger.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    handler._loopmark_json = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def request_id() -> str:
    """The current request's id."""
    return g.get("request_id") or "-"


def _start() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    ctx = g._get_current_object()  # each proxy access costs a lookup
    ctx.request_id = incoming if _REQUEST_ID_RE.fullmatch(incoming) else os.urandom(16).hex()
    ctx.request_started = time.perf_counter()
    request_begins()  # calls counted from zero, for this request's thread (service.breaker)


def _finish(response: Response) -> Response:
    # Runs last among the after_request hooks, so the status is the one sent (304, 429, ...).
    ctx = g._get_current_object()
    req = request._get_current_object()  # type: ignore[attr-defined]
    request_id = ctx.get("request_id") or os.urandom(16).hex()
    response.headers[REQUEST_ID_HEADER] = request_id
    started = ctx.get("request_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    method, path, status = req.method, req.path, response.status_code
    metrics: RequestMetrics | None = current_app.extensions.get(METRICS_EXTENSION)
    if metrics is not None:
        metrics.observe(req.endpoint or "none", method, status, seconds)
    fields: dict[str, Any] = {
        "request_id": request_id,
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
    }
    render_key = ctx.get("render_key")
    if render_key:
        fields["render_key"] = render_key
    for backend, sent in calls_sent().items():  # "records_calls": 2, this request's calls
        fields[f"{backend}_calls"] = sent
    _log_access(method, path, status, fields)
    return response


def _end(_exc: BaseException | None) -> None:
    request_ends()  # a backend that failed this request may be asked by the thread's next one


_access_log = logging.getLogger(ACCESS_LOGGER)


def _log_access(method: str, path: str, status: int, fields: dict[str, Any]) -> None:
    """The access line. When our JSON handler alone would write it (the logging set up by
    ``configure_logging``, nothing else listening: production), it is written straight to that
    handler, the very line the logging machinery would make from a record; else (pytest's
    caplog, an embedding application's handlers) through ``logging``. A line a request: the
    machinery (a record, its filters, locks and format) was a tenth of a cache hit's CPU."""
    handler = _sole_json_handler()
    if handler is None:
        _access_log.info("%s %s %s", method, path, status, extra=fields)
        return
    formatter = cast(JsonFormatter, handler.formatter)
    entry: dict[str, Any] = {
        "time": formatter.time_text(time.time()),
        "level": "info",
        "logger": ACCESS_LOGGER,
        "message": f"{method} {path} {status}",
    }
    entry.update(fields)  # the request id and render key are in them: the filter adds nothing
    handler.write_line(entry)


def _sole_json_handler() -> _StderrHandler | None:
    """Our JSON handler, if an INFO record of the access logger would reach it and nothing
    else: no filter on the way, no other handler (the root logger's included)."""
    if not _access_log.isEnabledFor(logging.INFO):
        return None
    found: _StderrHandler | None = None
    logger: logging.Logger | None = _access_log
    while logger is not None:
        if logger.filters:
            return None
        for handler in logger.handlers:
            if (
                found is not None
                or not isinstance(handler, _StderrHandler)
                or not isinstance(handler.formatter, JsonFormatter)
                or handler.level > logging.INFO
                or any(not isinstance(f, RequestContextFilter) for f in handler.filters)
            ):
                return None
            found = handler
        logger = logger.parent if logger.propagate else None
    return found
