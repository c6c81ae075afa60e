"""Dispatch: where render jobs run, as a port with a local pool and an AWS Lambda adapter.

One URL chooses the adapter (``LOOPMARK_DISPATCH``): ``local`` runs jobs on a bounded pool of
threads in this process (``concurrency`` at once — Settings' LOOPMARK_RENDER_CONCURRENCY —,
default the CPU count); a
``lambda://function-name`` sends each job to Lambda as an asynchronous invocation.
"""

from __future__ import annotations

from loopmark.dispatch.base import (
    DONE,
    FAILED,
    QUEUED,
    RENDERING,
    Dispatcher,
    JobRunner,
    JobState,
    RenderJob,
)
from loopmark.dispatch.local import DEFAULT_MAX_QUEUE, LocalDispatcher, default_concurrency
from loopmark.errors import ConfigInvalid, DispatchUnavailable, QueueFull

__all__ = [
    "DONE",
    "FAILED",
    "QUEUED",
    "RENDERING",
    "DispatchUnavailable",
    "Dispatcher",
    "JobRunner",
    "JobState",
    "LocalDispatcher",
    "QueueFull",
    "RenderJob",
    "open_dispatcher",
]


def open_dispatcher(
    url: str,
    runner: JobRunner,
    *,
    concurrency: int | None = None,
    max_queue: int = DEFAULT_MAX_QUEUE,
) -> Dispatcher:
    """The dispatcher ``url`` names. Starts nothing: local workers start on the first submit,
    the Lambda client is made on first use. ``runner`` is what the local pool runs; on Lambda the
    handler runs the same service itself. Raises ConfigInvalid for an unknown URL."""
    if url == "local":
        if concurrency is None:
            concurrency = default_concurrency()
        return LocalDispatcher(runner, concurrency=concurrency, max_queue=max_queue)
    if url.startswith("lambda://"):
        # Imported here so a local deployment never loads boto3 for dispatch.
        from loopmark.dispatch.aws_lambda import LambdaDispatcher

        return LambdaDispatcher.from_url(url)
    raise ConfigInvalid(f"LOOPMARK_DISPATCH must be local or lambda://function-name, got {url!r}")
