"""Operations endpoints: ``/healthz`` (storage, records, dispatcher) and ``/metrics``.

The health answer names each check's result by code only; reasons (paths, endpoints) go to the
log, not to whoever asks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import generate_latest

from loopmark.errors import LoopmarkError
from loopmark.web.context import services
from loopmark.web.errors import UNAVAILABLE_RETRY_AFTER_SECONDS
from loopmark.web.logs import METRICS_EXTENSION, RequestMetrics

log = logging.getLogger(__name__)

blueprint = Blueprint("health", __name__)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@blueprint.get("/healthz")
def healthz() -> Response:
    probes = services().render.health_checks()
    checks = {name: _run(name, probe) for name, probe in probes.items()}
    failing = [name for name, result in checks.items() if result != "ok"]
    response = jsonify({"ok": not failing, "checks": checks, "failing": failing})
    response.headers["Cache-Control"] = "no-store"
    if failing:
        response.status_code = 503
        response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


def _run(name: str, probe: Callable[[], None]) -> str:
    try:
        probe()
    except LoopmarkError as exc:
        log.warning("health check %s failed: %s", name, exc.reason)
        return exc.code
    except Exception:
        log.exception("health check %s raised", name)
        return "error"
    return "ok"


@blueprint.get("/metrics")
def metrics() -> Response:
    """The render service's metrics and the site's request counters (Prometheus text)."""
    parts = [services().metrics.exposition()]
    request_metrics: RequestMetrics | None = current_app.extensions.get(METRICS_EXTENSION)
    if request_metrics is not None:
        parts.append(generate_latest(request_metrics.registry))
    response = current_app.response_class(b"".join(parts), mimetype="text/plain")
    response.headers["Content-Type"] = PROMETHEUS_CONTENT_TYPE
    response.headers["Cache-Control"] = "no-store"
    return response
