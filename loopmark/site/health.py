"""Operations endpoints: ``/healthz`` (storage, records, dispatcher, disk), ``/readyz`` for load
balancers, and ``/metrics``.

The checks run side by side on a small pool within a time budget: a backend that does not answer
in time is reported as ``timeout`` (503) instead of holding the answer, and a check still stuck
from an earlier call is not started again, so a stalled backend cannot pile up threads. The
answer names each check's result by code only; reasons (paths, endpoints) go to the log.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify
from prometheus_client import generate_latest

from loopmark.errors import LoopmarkError
from loopmark.web.context import services
from loopmark.web.errors import UNAVAILABLE_RETRY_AFTER_SECONDS
from loopmark.web.logs import METRICS_EXTENSION, RequestMetrics
from loopmark.web.server import WARMED_EXTENSION

log = logging.getLogger(__name__)

blueprint = Blueprint("health", __name__)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHECKS_EXTENSION = "loopmark.health_checks"
# /healthz answers within this, whatever the backends do.
HEALTH_BUDGET_SECONDS = 2.0
# /readyz is asked every few seconds by every balancer node: a shorter budget, and its last
# answer is reused for this long.
READY_BUDGET_SECONDS = 1.0
READY_CACHE_SECONDS = 2.0
CHECK_THREADS = 4
MB = 1024 * 1024


class HealthChecks:
    """Runs named probes in parallel within a budget; a probe still running from an earlier
    call reports ``timeout`` at once instead of being started again."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="health")
        self.running: dict[str, Future[str]] = {}
        self.lock = threading.Lock()
        self.ready: tuple[float, bool, dict[str, str]] | None = None

    def run(self, probes: dict[str, Callable[[], None]], budget_s: float) -> dict[str, str]:
        with self.lock:
            futures = {}
            for name, probe in probes.items():
                future = self.running.get(name)
                if future is None or future.done():
                    future = self.pool.submit(_run, name, probe)
                    self.running[name] = future
                futures[name] = future
        wait_for(futures.values(), timeout=budget_s)
        results = {}
        for name, future in futures.items():
            if future.done():
                results[name] = future.result()
            else:
                log.warning("health check %s did not answer within %.1f s", name, budget_s)
                results[name] = "timeout"
        return results

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _checks(app: Flask) -> HealthChecks:
    checks: HealthChecks | None = app.extensions.get(CHECKS_EXTENSION)
    if checks is None:
        checks = app.extensions.setdefault(CHECKS_EXTENSION, HealthChecks())
    return checks


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


def disk_check() -> tuple[str, int | None]:
    """("ok" or "disk_low" or "disk_unavailable", free MB) for the data folder."""
    settings = services().settings
    try:
        free_mb = shutil.disk_usage(settings.data_dir).free // MB
    except OSError as exc:
        log.warning("health check disk failed: %s", exc)
        return "disk_unavailable", None
    if free_mb < settings.min_free_disk_mb:
        log.warning(
            "only %d MB free in the data folder (%d MB wanted)", free_mb, settings.min_free_disk_mb
        )
        return "disk_low", free_mb
    return "ok", free_mb


def _answer(body: dict[str, Any], healthy: bool) -> Response:
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    if not healthy:
        response.status_code = 503
        response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


@blueprint.get("/healthz")
def healthz() -> Response:
    """Every backend and the disk, checked in parallel within HEALTH_BUDGET_SECONDS."""
    checks = _checks(current_app).run(services().render.health_checks(), HEALTH_BUDGET_SECONDS)
    checks["disk"], free_mb = disk_check()
    failing = [name for name, result in checks.items() if result != "ok"]
    body = {"ok": not failing, "checks": checks, "failing": failing, "disk_free_mb": free_mb}
    return _answer(body, not failing)


@blueprint.get("/readyz")
def readyz() -> Response:
    """Whether to send this server traffic: templates warmed and every backend answering
    (within READY_BUDGET_SECONDS; the answer is reused for READY_CACHE_SECONDS)."""
    if not current_app.extensions.get(WARMED_EXTENSION):
        return _answer({"ready": False, "failing": ["templates"]}, False)
    health = _checks(current_app)
    cached = health.ready
    now = time.monotonic()
    if cached is None or now - cached[0] > READY_CACHE_SECONDS:
        results = health.run(services().render.health_checks(), READY_BUDGET_SECONDS)
        cached = (now, all(result == "ok" for result in results.values()), results)
        health.ready = cached
    _, ready, results = cached
    failing = [name for name, result in results.items() if result != "ok"]
    return _answer({"ready": ready, "failing": failing}, ready)


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
