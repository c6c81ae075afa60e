"""The AWS Lambda entry point (handler ``loopmark.lambda_entry.handle``): a thin wrapper that
runs one render job through the render service.

The service is built once per container (warm invocations reuse its clients and prepared
templates). A duplicate event finds the lease taken or the render done and does nothing.
"""

from __future__ import annotations

import functools
import logging
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
