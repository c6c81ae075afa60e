"""The caption policy's verdicts are remembered by (template version, normalised caption, word
lists' version): the same answers as the policy, and a word-list edit is seen at once."""

from __future__ import annotations

import pytest

from loopmark.config import Settings
from loopmark.errors import CaptionRejected
from loopmark.records.words import open_word_records
from loopmark.renderer.caption_policy import MAX_RAW_CODE_POINTS, WordLists
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.render import accept_caption, render_key
from loopmark.service.caption_verdicts import CaptionVerdicts
from loopmark.service.render_service import RenderService

TOO_LONG = "x" * (MAX_RAW_CODE_POINTS + 1)
CAPTIONS = ["Hello there", "Caf\u00e9", "Cafe\u0301", "  two   spaces ", "\u202ekcuf", "", "x" * 90]


def verdict(call: object) -> tuple[str, str]:
    try:
        return ("ok", call())  # type: ignore[operator]
    except CaptionRejected as exc:
        return (exc.code, exc.reason)


def test_verdicts_are_the_policys_asked_once_or_twice(small: PreparedTemplate) -> None:
    verdicts = CaptionVerdicts()
    lists = WordLists(banned=frozenset({"parsnips"}))
    for caption in [*CAPTIONS, "I like parsnips", TOO_LONG]:
        expected = verdict(lambda c=caption: accept_caption(small.template, c, lists))
        for _ in range(2):  # judged, then remembered
            got = verdict(lambda c=caption: verdicts.accept(small.template, c, lists, 7)[0])
            assert got == expected, caption
    # NFC and NFD spell one caption: one verdict; the far too long one is never kept.
    assert len(verdicts) == len(CAPTIONS)


def test_a_new_word_list_version_judges_again(small: PreparedTemplate) -> None:
    verdicts = CaptionVerdicts()
    plain, strict = WordLists(), WordLists(banned=frozenset({"parsnips"}))
    accepted = verdicts.accept(small.template, "I like parsnips", plain, 1)
    assert accepted == ("I like parsnips", render_key(small.template, "I like parsnips"))
    # The same version: the remembered verdict (the lists are only read when it moves).
    assert verdicts.accept(small.template, "I like parsnips", strict, 1) == accepted
    with pytest.raises(CaptionRejected) as refused:
        verdicts.accept(small.template, "I like parsnips", strict, 2)
    assert refused.value.code == "caption_profanity"
    # Before the lists were ever read (version None) nothing is remembered.
    before = len(verdicts)
    assert verdicts.accept(small.template, "Unversioned", plain, None)[0] == "Unversioned"
    assert len(verdicts) == before


def test_the_least_recently_used_verdicts_go_first(small: PreparedTemplate) -> None:
    verdicts = CaptionVerdicts(size=2)
    for caption in ("one", "two", "one", "three"):
        verdicts.accept(small.template, caption, WordLists(), 1)
    assert len(verdicts) == 2
    assert [key[2] for key in verdicts._verdicts] == ["one", "three"]


def test_an_admins_edit_reaches_a_caption_already_judged(
    service: RenderService, settings: Settings
) -> None:
    words = open_word_records(settings.records_url)
    assert service.check_caption("small", "I love parsnips") == "I love parsnips"
    words.add("banned", "parsnips")
    service.words.invalidate()  # what the admin's edit does in this process
    with pytest.raises(CaptionRejected):
        service.check_caption("small", "I love parsnips")
    with pytest.raises(CaptionRejected):
        service.request("small", "I love parsnips")
    with pytest.raises(CaptionRejected):
        service.check_caption("small", "What the hell")
    words.add("allowed", "hell")
    service.words.invalidate()
    assert service.check_caption("small", "What the hell") == "What the hell"
