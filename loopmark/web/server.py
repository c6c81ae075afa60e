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
import copy
import logging
import resource
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from flask import Flask
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer, MultiSocketServer
from waitress.server import create_server as waitress_server
from werkzeug.exceptions import HTTPException

from loopmark.errors import LoopmarkError
from loopmark.service.render_service import RenderService
from loopmark.web.context import services as app_services
from loopmark.web.logs import configure_logging

log = logging.getLogger(__name__)

# Request threads. POST /api/renders may hold a thread for ~2 s (RENDER_HOLD_SLOTS of them at
# most); the others answer cache hits and pages in milliseconds.
DEFAULT_THREADS = 16
# Open connections waitress keeps (idle keep-alives included) before it stops accepting; the
# rest wait in the kernel's listen backlog. A venue's phones each keep a connection or two open.
CONNECTION_LIMIT = 5000
# Descriptors kept for everything that is not a client connection: the listening socket, SQLite
# files per thread, log files, FFmpeg pipes, prepared templates, S3/DynamoDB connections.
RESERVED_DESCRIPTORS = 200
# An idle or stalled connection is closed after this long: longer than a load balancer's idle
# timeout (60 s on AWS), so the balancer closes first and never reuses a connection we drop.
CHANNEL_TIMEOUT_SECONDS = 65
# The most any route may take (a visitor's upload: LOOPMARK_UPLOAD_MAX_BYTES, at most 120 MB,
# plus its form fields). Every route gets its own, smaller bound from the parser below, before
# its body is read (16 KB unless the view declares more).
MAX_REQUEST_BODY_BYTES = 121 * 1024 * 1024
# The attribute a view carries when it takes more than app.config["MAX_CONTENT_LENGTH"]
# (set by ``loopmark.admin.auth.allows_body``; tests/web/test_server.py holds them together).
VIEW_BODY_LIMIT_ATTRIBUTE = "admin_max_body_bytes"
# Set in app.extensions once warm_up has prepared the templates (/readyz waits for it).
WARMED_EXTENSION = "loopmark.templates_warmed"


def create_server(app: Flask, host: str, port: int, *, threads: int = DEFAULT_THREADS) -> Any:
    """A waitress server bound to (host, port), not yet running (``.run()``, ``.close()``).
    Port 0 picks a free port: see ``.effective_port``.

    poll() rather than select(), which cannot watch a descriptor above 1024 (waitress's default
    died with ValueError past about a thousand connections); the descriptor limit raised so the
    connection limit can be reached; each request's body bounded by its route before it is read.
    Proxy headers pass through untouched: the app decides whom to trust
    (``loopmark.web.proxies``), so the test client and the real server behave alike."""
    connection_limit = connection_limit_for(raise_descriptor_limit())
    server = waitress_server(
        app,
        host=host,
        port=port,
        threads=threads,
        asyncore_use_poll=True,
        connection_limit=connection_limit,
        channel_timeout=CHANNEL_TIMEOUT_SECONDS,
        max_request_body_size=MAX_REQUEST_BODY_BYTES,
        # waitress's trusted_proxy takes one address (or "*"); a CDN or a load balancer comes
        # from many. The app trusts by address list and hop count, and no one applies it twice.
        clear_untrusted_proxy_headers=False,
        ident="loopmark",
        expose_tracebacks=False,
    )
    channel = _channel_class(body_limits(app))
    for listener in _listeners(server):
        listener.channel_class = channel
    return server


def raise_descriptor_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (logged); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, CONNECTION_LIMIT * 2)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, wanted, exc)
            return soft
        log.info("open-file limit raised from %d to %d", soft, wanted)
        return wanted
    return soft


def connection_limit_for(descriptors: int) -> int:
    """CONNECTION_LIMIT, or less when the descriptor limit cannot hold it (logged)."""
    if descriptors == resource.RLIM_INFINITY:
        return CONNECTION_LIMIT
    room = descriptors - RESERVED_DESCRIPTORS
    if room >= CONNECTION_LIMIT:
        return CONNECTION_LIMIT
    limit = max(room, 1)
    log.warning(
        "the open-file limit (%d) holds only %d connections, not %d: raise it "
        "(LimitNOFILE=65536 in the systemd unit, --ulimit nofile=65536 for a container)",
        descriptors,
        limit,
        CONNECTION_LIMIT,
    )
    return limit


def body_limits(app: Flask) -> Callable[[str, str], int]:
    """``limit(method, path)``: the most bytes a request's body may have on that route, from
    the view's declared limit or ``app.config["MAX_CONTENT_LENGTH"]``."""
    default = int(app.config["MAX_CONTENT_LENGTH"] or MAX_REQUEST_BODY_BYTES)
    adapter = app.url_map.bind("localhost")

    def limit(method: str, path: str) -> int:
        try:
            endpoint, _ = adapter.match(path, method=method)
        except HTTPException:  # no such route: Flask answers 404/405, reading nothing big
            return default
        view = app.view_functions.get(str(endpoint))
        declared = getattr(view, VIEW_BODY_LIMIT_ATTRIBUTE, None)
        return min(int(declared), MAX_REQUEST_BODY_BYTES) if declared else default

    return limit


def _channel_class(limit: Callable[[str, str], int]) -> type[HTTPChannel]:
    """A waitress channel whose parser bounds each request's body by its route, once the
    headers are in and before any of the body is buffered (413 at once)."""
    adjustments: dict[tuple[int, int], Adjustments] = {}

    class RouteBoundParser(HTTPRequestParser):
        def parse_header(self, header_plus: bytes) -> None:
            super().parse_header(header_plus)
            command: str | bytes = self.command  # str at run time (the stubs say bytes)
            method = command if isinstance(command, str) else command.decode("latin-1")
            allowed = limit(method, str(getattr(self, "path", "/")))
            if self.content_length <= allowed and not self.chunked:
                return
            # waitress refuses a body of max_request_body_size bytes or more.
            key = (id(self.adj), allowed)
            bounded = adjustments.get(key)
            if bounded is None:
                bounded = copy.copy(self.adj)
                bounded.max_request_body_size = allowed + 1
                adjustments[key] = bounded
            self.adj = bounded

    class RouteBoundChannel(HTTPChannel):
        parser_class = RouteBoundParser

    return RouteBoundChannel


def _listeners(server: Any) -> list[Any]:
    """The listening servers behind what waitress's create_server returned (one per address)."""
    if isinstance(server, MultiSocketServer):
        listeners: list[Any] = list((server.map or {}).values())  # the stubs say sockets
        return [s for s in listeners if isinstance(s, BaseWSGIServer)]
    return [server]


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
    app.extensions[WARMED_EXTENSION] = True
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
