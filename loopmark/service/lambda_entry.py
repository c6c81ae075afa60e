"""The AWS Lambda entry point: a thin wrapper that runs one render job through the service.

The service is built once per container (warm invocations reuse its clients and prepared
templates). A duplicate event finds the lease taken or the render done and does nothing.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from loopmark.config import Settings
from loopmark.dispatch.base import RenderJob
from loopmark.errors import BadInput
from loopmark.service.factory import build_render_service
from loopmark.service.render_service import RenderService

log = logging.getLogger(__name__)


@functools.cache
def _service() -> RenderService:
    return build_render_service(Settings.from_env(), with_dispatcher=False)


def handle(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """Render the job in ``event``; bad input is answered, not raised (retrying cannot help).

    Infrastructure errors are raised so that Lambda's own retry (at most twice for async
    invocations) gets another go; the lease makes the retry safe.
    """
    try:
        job = RenderJob.from_event(event)
        service = _service()
        service.execute(job, lambda _fraction: None)
    except BadInput as exc:
        log.warning("render refused: %s", exc.reason)
        return {"ok": False, "error": {"code": exc.code, "message": exc.reason}}
    record = service.records.get(job.key)
    return {"ok": True, "key": job.key, "status": record.status if record else "unknown"}
