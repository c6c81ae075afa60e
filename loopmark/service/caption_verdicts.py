"""The caption policy's verdicts, remembered: a cache hit must not re-run the policy.

A verdict (the normalised caption, or the refusal's code and reason) depends on the template
(its id and version: a template may offer only its own captions), the caption *as normalised*
(the policy checks the raw length first, then works on the normalised text only) and the brand's
word lists. The word lists' version (``WordListRecords.version``, bumped by every admin edit)
is part of the key, so an edit makes every remembered verdict unreachable at once; before the
lists were ever read (version None) nothing is remembered. The template's GIF size budget is in
the key too: it is part of the render key but not of the template's version (editing it in
template.toml prepares nothing again), so a verdict remembered under another budget would name
another render.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from loopmark.errors import CaptionRejected
from loopmark.renderer.caption_policy import (
    MAX_RAW_CODE_POINTS,
    WordLists,
    normalize_caption,
)
from loopmark.renderer.render import accept_caption, normalised_render_key
from loopmark.renderer.templates import Template

# Verdicts kept (least recently used dropped first): a busy event has a few hundred captions;
# an entry is a caption of at most MAX_RAW_CODE_POINTS characters and its verdict.
VERDICTS_KEPT = 4096

_Key = tuple[str, str, str, int, int | None]


@dataclass(frozen=True)
class _Refusal:
    code: str
    reason: str  # untranslated (errors.N_) with its values: the web edge says it per language
    params: tuple[tuple[str, object], ...] = ()


# The normalised caption and its render key, or why it was refused.
_Verdict = tuple[str, str] | _Refusal


class CaptionVerdicts:
    """``accept(template, caption, lists, words_version)``: ``accept_caption``'s answer and the
    render key, from memory when this (template version, normalised caption, word lists'
    version) was judged."""

    def __init__(self, size: int = VERDICTS_KEPT) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._verdicts: OrderedDict[_Key, _Verdict] = OrderedDict()

    def accept(
        self, template: Template, caption: str, lists: WordLists, words_version: int | None
    ) -> tuple[str, str]:
        """The normalised caption and its render key (``normalised_render_key``), or
        CaptionRejected (a fresh one each time)."""
        if words_version is None or len(caption) > MAX_RAW_CODE_POINTS:
            return _judge(template, caption, lists)  # too long: refused at once
        cache_key = (
            template.id,
            template.version,
            normalize_caption(caption),
            words_version,
            template.max_gif_bytes,
        )
        with self._lock:
            verdict = self._verdicts.get(cache_key)
            if verdict is not None:
                self._verdicts.move_to_end(cache_key)
        if verdict is None:
            try:
                verdict = _judge(template, caption, lists)
            except CaptionRejected as exc:
                verdict = _Refusal(exc.code, exc.message_id, tuple(exc.params.items()))
            self._remember(cache_key, verdict)
        if isinstance(verdict, _Refusal):
            raise CaptionRejected(verdict.reason, code=verdict.code, params=dict(verdict.params))
        return verdict

    def __len__(self) -> int:
        return len(self._verdicts)

    def _remember(self, key: _Key, verdict: _Verdict) -> None:
        with self._lock:
            self._verdicts[key] = verdict
            self._verdicts.move_to_end(key)
            while len(self._verdicts) > self.size:
                self._verdicts.popitem(last=False)


def _judge(template: Template, caption: str, lists: WordLists) -> tuple[str, str]:
    normalised = accept_caption(template, caption, lists)
    return normalised, normalised_render_key(template, normalised)
