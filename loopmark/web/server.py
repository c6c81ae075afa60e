"""Serving the site in production: waitress, one process with a pool of threads.

One process on purpose: the render pool, its bounded queue, the rate-limit counters and the
prepared templates are shared by every request the server takes, so the bound really bounds.
Before listening, every enabled template is prepared, so the first visitors do not pay for it.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any

from flask import Flask
from waitress.server import create_server as waitress_server

from loopmark.errors import LoopmarkError
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
    """Prepare every enabled template (loads and verifies those prepared already: a bad one is
    prepared again); returns the ids ready. A template that fails, for whatever reason, is
    logged (by the catalog) and skipped: the site still starts, without it."""
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
        except Exception as exc:  # start-up goes on without it (the catalog logged the cause)
            log.error("template %s skipped: %s", template.id, getattr(exc, "reason", exc))
            continue
        ready.append(template.id)
    return ready


def serve(
    app: Flask,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    threads: int = DEFAULT_THREADS,
    warm: bool = True,
) -> None:
    """Run the site until interrupted (Ctrl-C or SIGTERM), then stop the render pool."""
    configure_logging()
    configure_logging("waitress")
    if warm:
        ready = warm_up(app)
        log.info("templates ready: %s", ", ".join(ready) or "none")
    server = create_server(app, host, port, threads=threads)
    if threading.current_thread() is threading.main_thread():
        # A container stops with SIGTERM: leave the loop as Ctrl-C does, so the pool is closed.
        signal.signal(signal.SIGTERM, _exit)
    log.info(
        "serving on http://%s:%s with %d threads",
        server.effective_host,
        server.effective_port,
        threads,
    )
    try:
        server.run()
    finally:
        server.close()
        app_services(app).close()


def _exit(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)
