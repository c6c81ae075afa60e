"""Serving the site in production: waitress, one process with a pool of threads.

One process on purpose: the render pool, its bounded queue, the rate-limit counters and the
prepared templates are shared by every request the server takes, so the bound really bounds.
Before listening, every enabled template is prepared, so the first visitors do not pay for it, and
the renders a previous run accepted but did not finish are dispatched again; while serving, a
sweep every lease does it again (a render killed mid-way is found once its lease lapses).
SIGTERM stops gracefully: new renders get 503 with Retry-After, running ones get
LOOPMARK_SHUTDOWN_GRACE_SECONDS to finish (then are handed back to the queue), and the process
exits 0.
"""

from __future__ import annotations

import _thread
import logging
import signal
import threading
from types import FrameType
from typing import Any

from flask import Flask
from waitress.server import create_server as waitress_server

from loopmark.errors import LoopmarkError
from loopmark.service.render_service import RenderService
from loopmark.web.context import services as app_services
from loopmark.web.logs import configure_logging

log = logging.getLogger(__name__)

# Request threads. POST /api/renders may hold a thread for ~2 s (RENDER_HOLD_SLOTS of them at
# most); the others answer cache hits and pages in milliseconds.
DEFAULT_THREADS = 16
# Open connections waitress keeps (idle keep-alives included) before it stops accepting.
CONNECTION_LIMIT = 1000
# Idle keep-alive connections are closed after this long.
CHANNEL_TIMEOUT_SECONDS = 60
# Waitress refuses bodies above this before the app sees them (uploads are at most 25 MB).
MAX_REQUEST_BODY_BYTES = 32 * 1024 * 1024


def create_server(app: Flask, host: str, port: int, *, threads: int = DEFAULT_THREADS) -> Any:
    """A waitress server bound to (host, port), not yet running (``.run()``, ``.close()``).
    Port 0 picks a free port: see ``.effective_port``."""
    return waitress_server(
        app,
        host=host,
        port=port,
        threads=threads,
        connection_limit=CONNECTION_LIMIT,
        channel_timeout=CHANNEL_TIMEOUT_SECONDS,
        max_request_body_size=MAX_REQUEST_BODY_BYTES,
        ident="loopmark",
        expose_tracebacks=False,
    )


def warm_up(app: Flask) -> list[str]:
    """Prepare every enabled template (a no-op when prepared already); returns the ids ready.
    A template that fails is logged and skipped: the site still starts."""
    catalog = app_services(app).templates
    ready: list[str] = []
    try:
        templates = catalog.all()
    except LoopmarkError as exc:
        log.error("cannot list templates to prepare: %s", exc.reason)
        return ready
    for template in templates:
        try:
            catalog.prepared(template)
        except LoopmarkError as exc:
            log.error("template %s cannot be prepared: %s", template.id, exc.reason)
            continue
        ready.append(template.id)
    return ready


def requeue_unfinished(app: Flask, *, min_age_s: float = 0.0) -> int:
    """Dispatch again the renders accepted but not finished before this start (a crash, a kill,
    a stop with renders queued); returns how many. A records outage is logged, not fatal: the
    renders are dispatched by their visitors' polls meanwhile."""
    try:
        count = app_services(app).render.requeue_unfinished(min_age_s=min_age_s)
    except LoopmarkError as exc:
        log.error("cannot re-queue unfinished renders: %s", exc.reason)
        return 0
    if count:
        log.info("re-queued %d unfinished renders", count)
    return count


def serve(
    app: Flask,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    threads: int = DEFAULT_THREADS,
    warm: bool = True,
) -> None:
    """Run the site until interrupted (Ctrl-C, or SIGTERM: a graceful stop), then stop the
    render pool."""
    configure_logging()
    configure_logging("waitress")
    if warm:
        ready = warm_up(app)
        log.info("templates ready: %s", ", ".join(ready) or "none")
    requeue_unfinished(app)
    server = create_server(app, host, port, threads=threads)
    services = app_services(app)
    sweep = RequeueSweep(app, services.settings.lease_seconds)
    stop = GracefulStop(services.render, services.settings.shutdown_grace_seconds, sweep)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop.on_signal)
    log.info(
        "serving on http://%s:%s with %d threads",
        server.effective_host,
        server.effective_port,
        threads,
    )
    sweep.start()
    try:
        server.run()  # returns on KeyboardInterrupt and SystemExit
    finally:
        sweep.stop()
        stop.serving = False
        server.close()
        services.close()  # hands back any render still running (Ctrl-C, a second SIGTERM)


class RequeueSweep:
    """Every ``interval_s`` (a lease) while serving, dispatch again the unfinished renders queued
    at least that long ago: a render whose worker was killed is found once its lease lapses,
    and one that found the queue full once there is room. Submitting a job the pool holds
    already changes nothing, and the lease keeps a render single."""

    def __init__(self, app: Flask, interval_s: float) -> None:
        self.app = app
        self.interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopmark-requeue", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            requeue_unfinished(self.app, min_age_s=self.interval_s)


class GracefulStop:
    """SIGTERM (a container or systemd stopping us): the render service stops taking renders at
    once (new ones are answered 503 + Retry-After) while the server keeps answering polls, cache
    hits and pages; running renders get ``grace_s`` to finish, those still running are handed
    back to the queue, then the server's loop is left as Ctrl-C leaves it, and the process exits
    0. Queued renders stay recorded for the next start. A second SIGTERM stops at once."""

    def __init__(self, render: RenderService, grace_s: float, sweep: RequeueSweep) -> None:
        self.render = render
        self.grace_s = grace_s
        self.sweep = sweep
        self.serving = True
        self._stopping: threading.Thread | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping is not None:
            raise SystemExit(0)
        log.info("stopping: running renders get %.0f s to finish", self.grace_s)
        # Not in the handler: the main thread runs the server's loop, which must keep serving.
        self._stopping = threading.Thread(target=self._drain, name="loopmark-stop", daemon=True)
        self._stopping.start()

    def _drain(self) -> None:
        self.sweep.stop()
        try:
            self.render.stop(grace_s=self.grace_s)
        except Exception:
            log.exception("stopping the render service failed")
        finally:
            if self.serving:
                _thread.interrupt_main()  # KeyboardInterrupt in server.run(): it returns
