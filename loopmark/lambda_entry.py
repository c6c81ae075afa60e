"""The AWS Lambda entry points: ``loopmark.lambda_entry.handle`` runs one render job through the
render service; ``loopmark.lambda_entry.site`` serves the web app to function URL (and API
Gateway) events through apig-wsgi (the ``aws`` extra).

Both build what they need once per container, on the first call, never at import time (warm
invocations reuse clients and prepared templates). A duplicate render event finds the lease
taken or the render done and does nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from loopmark.composition import Services, build_services
from loopmark.config import Settings
from loopmark.dispatch.base import RenderJob
from loopmark.errors import BadInput

log = logging.getLogger(__name__)


@functools.cache
def _services() -> Services:
    return build_services(Settings.from_env(), with_dispatcher=False)


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


LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


@functools.cache
def _site_handler() -> LambdaHandler:
    import apig_wsgi

    from loopmark.app import create_app

    handler: LambdaHandler = apig_wsgi.make_lambda_handler(create_app(), binary_support=True)
    return handler


def site(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """The web app for a function URL event (payload 2.0) or API Gateway's; GIFs and MP4s go
    back base64-encoded (binary support on)."""
    return _site_handler()(event, context)
