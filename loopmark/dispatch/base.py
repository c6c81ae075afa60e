"""The Dispatcher port: a render job, its observable state, and the interface adapters implement.

A dispatcher takes a :class:`RenderJob` (an accepted caption for a template, under its content
key) and runs it somewhere: in a bounded local pool, or on AWS Lambda. Callers read a job's
:class:`JobState` (queued, rendering, done, failed, with queue position, progress and ETA) while
the dispatcher still knows the job; past that, the render records are the truth.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from loopmark.errors import BadInput, LoopmarkError

JobStatus = Literal["queued", "rendering", "done", "failed"]
QUEUED: JobStatus = "queued"
RENDERING: JobStatus = "rendering"
DONE: JobStatus = "done"
FAILED: JobStatus = "failed"
FINISHED_STATES = frozenset({DONE, FAILED})

# Render keys are lowercase base32 digests (renderer.render.render_key); the looser rule here
# also admits test keys, while keeping anything path- or shell-like out of an event.
KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# The same rule as renderer.templates.TEMPLATE_ID_PATTERN, repeated so that validating an event
# never imports the renderer (Pillow, NumPy) into the web process.
TEMPLATE_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
# The caption policy caps raw input at 1,000 code points before anything else; an event's caption
# has passed that policy, so a longer one is junk, not a caption.
MAX_EVENT_CAPTION_CHARS = 1000

ProgressReport = Callable[[float], None]


@dataclass(frozen=True)
class RenderJob:
    """One render to run: ``caption`` is already normalised and accepted by the caption policy,
    against the brand's word lists at ``words_version`` (None: unknown, so the worker checks the
    caption again)."""

    key: str
    template_id: str
    caption: str
    words_version: int | None = None

    def to_event(self) -> dict[str, str | int]:
        """The Lambda payload (a JSON object: three strings, and the word lists' version)."""
        event: dict[str, str | int] = {
            "key": self.key,
            "template_id": self.template_id,
            "caption": self.caption,
        }
        if self.words_version is not None:
            event["words_version"] = self.words_version
        return event

    @classmethod
    def from_event(cls, event: Any) -> RenderJob:
        """The job an event carries; BadInput when the event is not one ``to_event`` made.

        Unknown extra fields are ignored, so an older handler accepts a newer site's events.
        """
        if not isinstance(event, Mapping):
            raise BadInput(f"render event must be a JSON object, got {type(event).__name__}")
        values: dict[str, str] = {}
        for field in ("key", "template_id", "caption"):
            value = event.get(field)
            if not isinstance(value, str):
                raise BadInput(f"render event field {field!r} must be a string")
            values[field] = value
        if KEY_PATTERN.fullmatch(values["key"]) is None:
            raise BadInput(f"render event has an invalid key: {values['key'][:80]!r}")
        if TEMPLATE_ID_PATTERN.fullmatch(values["template_id"]) is None:
            raise BadInput(
                f"render event has an invalid template id: {values['template_id'][:80]!r}"
            )
        if not values["caption"] or len(values["caption"]) > MAX_EVENT_CAPTION_CHARS:
            raise BadInput("render event caption is empty or too long")
        words_version = event.get("words_version")
        if words_version is not None and (
            isinstance(words_version, bool) or not isinstance(words_version, int)
        ):
            raise BadInput("render event field 'words_version' must be a whole number")
        return cls(**values, words_version=words_version)


@dataclass(frozen=True)
class JobState:
    """What a dispatcher can tell about one key right now."""

    key: str
    state: JobStatus
    position: int  # 1-based place in the queue when queued, 0 otherwise
    progress: float  # 0..1
    eta_seconds: float | None  # seconds until done; None when unknown
    error: LoopmarkError | None = None  # on failed: the domain error the runner raised

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


# The render service's execute(job, report): renders, stores, marks done; raises on failure.
# ``report(fraction)`` passes real frame progress (0..1) back to the dispatcher.
JobRunner = Callable[[RenderJob, ProgressReport], None]


class Dispatcher(Protocol):
    """Runs render jobs. Every method is safe to call from many request threads at once."""

    def submit(self, job: RenderJob) -> JobState:
        """Queue ``job``. Idempotent per key while the job is queued or running: a second submit
        returns the existing job's state. QueueFull (with ``retry_after_s``) past the bound;
        DispatchUnavailable when the backend cannot take work."""
        ...

    def state(self, key: str) -> JobState | None:
        """The job's latest state, or None when this dispatcher knows nothing of ``key`` (the
        caller then asks the render records)."""
        ...

    def wait(self, key: str, timeout_s: float) -> JobState | None:
        """Block until the job is done or failed, or ``timeout_s`` passed; the latest state."""
        ...

    def queue_depth(self) -> int:
        """Jobs waiting for a worker (the ``loopmark_queue_depth`` gauge)."""
        ...

    def check(self) -> None:
        """Raise DispatchUnavailable when the dispatcher cannot take work (for /healthz)."""
        ...

    def close(self, *, grace_s: float = ...) -> None:
        """Stop taking work (DispatchUnavailable with a Retry-After), drop jobs not started yet
        (their render records keep them queued), and give running renders up to ``grace_s`` to
        finish (shutdown, tests). Safe to call twice."""
        ...


def clamp_fraction(value: float) -> float:
    """A progress fraction in 0..1; NaN (a runner's 0/0) counts as no progress."""
    value = float(value)
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, value))


def retry_after_seconds(seconds: float) -> int:
    """A Retry-After header value: whole seconds, at least one."""
    if math.isnan(seconds) or seconds <= 1.0:
        return 1
    return math.ceil(seconds)
