"""Domain errors: values that carry a reason, translated to HTTP or exit codes at the edge."""

from __future__ import annotations

from collections.abc import Mapping


def N_(message: str) -> str:
    """Mark a message for the translation catalogues (``make translations`` extracts it) where
    it is written, in layers that know nothing of languages; the web edge translates it."""
    return message


class LoopmarkError(Exception):
    """Base of every error Loopmark raises on purpose. `code` is stable; `reason` is for people.

    ``reason`` is English. A reason written ``N_("… %(name)s …")`` with ``params`` keeps its
    untranslated form (``message_id``) and values, so the web edge can say it in the visitor's
    language (``loopmark.web.errors.reason_of``)."""

    code = "error"

    def __init__(
        self, reason: str, *, code: str | None = None, params: Mapping[str, object] | None = None
    ) -> None:
        self.params = dict(params) if params else {}
        self.message_id = reason
        self.reason = reason % self.params if self.params else reason
        super().__init__(self.reason)
        if code is not None:
            self.code = code


class BadInput(LoopmarkError):
    """The caller sent something we refuse (HTTP 4xx, exit status 2)."""

    code = "bad_input"


class OptionRejected(BadInput):
    """One option's value is refused (``--width`` of ``loopmark templates add``). ``option``
    names it: a reason may say it as ``%(option)s``, and a form showing the refusal marks its
    own field and names it in its own words instead."""

    def __init__(
        self, option: str, reason: str, *, params: Mapping[str, object] | None = None
    ) -> None:
        super().__init__(reason, params={"option": option, **(params or {})})
        self.option = option


class CaptionRejected(BadInput):
    """A caption the policy refuses. `code` names the rule (``caption_too_long``, ...)."""

    code = "caption_rejected"


class UnknownTemplate(BadInput):
    code = "unknown_template"

    def __init__(self, template_id: str) -> None:
        super().__init__(f"unknown template: {template_id!r}")
        self.template_id = template_id


class TemplateInvalid(BadInput):
    """A template's folder or settings are wrong (bad toml, missing source, values out of range)."""

    code = "template_invalid"


class VideoRejected(BadInput):
    """A video file failed the hardened probe: wrong container, too big, too long, unreadable."""

    code = "video_rejected"


class ToolFailed(LoopmarkError):
    """An external program (FFmpeg, gifsicle) failed, timed out or ran out of memory.

    Keeps the program's stderr for logs; the reason shown to users stays short.
    """

    code = "tool_failed"

    def __init__(self, reason: str, *, argv: list[str] | None = None, stderr: str = "") -> None:
        super().__init__(reason)
        self.argv = argv or []
        self.stderr = stderr


class ConfigInvalid(BadInput):
    """A setting such as ``LOOPMARK_STORAGE`` is malformed; the reason says the expected form."""

    code = "config_invalid"


class BackendUnavailable(LoopmarkError):
    """A backend (storage, records) failed or cannot be reached; callers answer 503 with
    ``Retry-After``: ``retry_after_s`` when known (an open circuit breaker's cool-down), else the
    edge's default for outages."""

    code = "backend_unavailable"

    def __init__(self, reason: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class StorageUnavailable(BackendUnavailable):
    """The media storage backend failed or cannot be reached; callers answer 503 + Retry-After.

    The backend's own exception is kept as ``__cause__`` for logs.
    """

    code = "storage_unavailable"


class RecordsUnavailable(BackendUnavailable):
    """The records backend (SQLite, DynamoDB) cannot be reached or answered with an error (503)."""

    code = "records_unavailable"


class QueueFull(LoopmarkError):
    """The render queue is at its bound; callers answer 429 with ``Retry-After: retry_after_s``."""

    code = "queue_full"

    def __init__(self, reason: str, *, retry_after_s: int) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class DispatchUnavailable(LoopmarkError):
    """The dispatcher (the local pool after close, AWS Lambda) cannot take work (503), with the
    Retry-After it knows (AWS's, when it throttles), else the default for outages."""

    code = "dispatch_unavailable"

    def __init__(self, reason: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s
