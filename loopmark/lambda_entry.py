"""The AWS Lambda entry points, thin wrappers over the same services as everywhere else:

- ``loopmark.lambda_entry.handle``: the renderer; runs one render job through the render
  service. A duplicate event finds the lease taken or the render done and does nothing.
- ``loopmark.lambda_entry.site``: the web app behind a Lambda function URL (or API Gateway),
  its WSGI calls translated by apig-wsgi; and the site's scheduled work (:func:`scheduled`): an
  EventBridge rule sends it ``{"loopmark": "requeue"}`` every few minutes.

Each is built once per container, on its first invocation (warm invocations reuse clients and
prepared templates); importing this module does no work.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loopmark.composition import Services, build_services
from loopmark.config import Settings
from loopmark.dispatch.base import RenderJob
from loopmark.errors import BadInput

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)


@functools.cache
def _services() -> Services:
    return build_services(Settings.from_env(), with_dispatcher=False)


@functools.cache
def site_app() -> Flask:
    """The web app of this container, built on the first request."""
    from loopmark.app import create_app

    return create_app()


@functools.cache
def _site_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    from apig_wsgi import make_lambda_handler

    # Media and fonts are binary: apig-wsgi base64-encodes any body that is not text.
    return make_lambda_handler(site_app(), binary_support=True)


# The key of a scheduled event (deploy/: an EventBridge rule's constant input). A function URL
# or API Gateway event never has it at its top level: a visitor cannot send one.
SCHEDULED_TASK_KEY = "loopmark"
REQUEUE_TASK = "requeue"
# What the requeue sweep leaves alone: a render queued less than this long ago may still be in
# Lambda's own queue (throttled at the renderer's reserved concurrency, or between its two
# retries, which are over within about 3 minutes); older and unfinished, every event for it
# failed or was dropped (to the dead-letter queue), and nobody's poll brought it back.
REQUEUE_MIN_AGE_S = 600.0


def site(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """One HTTP request to the web app (a function URL or API Gateway event), or a scheduled
    task (an EventBridge event carrying SCHEDULED_TASK_KEY)."""
    if SCHEDULED_TASK_KEY in event:
        return scheduled(event[SCHEDULED_TASK_KEY])
    return _site_handler()(event, context)


def scheduled(task: object) -> dict[str, Any]:
    """The site's scheduled work. ``requeue``: dispatch again the renders accepted at least
    REQUEUE_MIN_AGE_S ago and still unfinished (the render service's requeue, as a server does
    on start and every lease); a records outage is logged and raised, so the invocation counts
    as an error (the site's alarm) and the next schedule tries again."""
    if task != REQUEUE_TASK:
        log.warning("unknown scheduled task %r", task)
        return {"ok": False, "error": {"code": "unknown_task", "message": f"no task {task!r}"}}
    from loopmark.web.context import services

    count = services(site_app()).render.requeue_unfinished(min_age_s=REQUEUE_MIN_AGE_S)
    if count:
        log.info("scheduled requeue: dispatched %d unfinished renders again", count)
    return {"ok": True, "task": REQUEUE_TASK, "requeued": count}


def handle(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """Render the job in ``event``; bad input is answered, not raised (retrying cannot help).

    Infrastructure errors are raised so that Lambda's own retry (at most twice for async
    invocations) gets another go; the lease makes the retry safe.
    """
    try:
        job = RenderJob.from_event(event)
        service = _services().render
        service.execute(job, lambda _fraction: None)
    except BadInput as exc:
        log.warning("render refused: %s", exc.reason)
        return {"ok": False, "error": {"code": exc.code, "message": exc.reason}}
    record = service.record(job.key)
    return {"ok": True, "key": job.key, "status": record.status if record else "unknown"}
