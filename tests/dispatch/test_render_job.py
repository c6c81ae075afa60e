"""RenderJob's Lambda payload: a round trip, and junk refused with BadInput."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loopmark.dispatch import RenderJob
from loopmark.dispatch.base import TEMPLATE_ID_PATTERN, clamp_fraction, retry_after_seconds
from loopmark.errors import BadInput
from loopmark.renderer import templates


def test_event_round_trips_through_json() -> None:
    job = RenderJob(
        key="k7hq2xw3abcdefghijklmnop", template_id="bunny-hop", caption="Ça va? 🎉 مرحبا"
    )
    event = json.loads(json.dumps(job.to_event()))
    assert event == {"key": job.key, "template_id": "bunny-hop", "caption": "Ça va? 🎉 مرحبا"}
    assert RenderJob.from_event(event) == job


def test_the_word_lists_version_travels_with_the_job() -> None:
    job = RenderJob("k7hq2xw3abcdefghijklmnop", "bunny-hop", "Hop", words_version=7)
    event = json.loads(json.dumps(job.to_event()))
    assert event["words_version"] == 7
    assert RenderJob.from_event(event) == job
    for junk in ("7", 7.5, True, [7]):
        with pytest.raises(BadInput, match="words_version"):
            RenderJob.from_event({**event, "words_version": junk})


def test_extra_fields_are_ignored() -> None:
    event = {"key": "abc", "template_id": "t", "caption": "hi", "added_later": 1}
    assert RenderJob.from_event(event) == RenderJob("abc", "t", "hi")


@pytest.mark.parametrize(
    "event",
    [
        None,
        "abc",
        ["abc", "t", "hi"],
        {},
        {"key": "abc", "template_id": "t"},
        {"key": 1, "template_id": "t", "caption": "hi"},
        {"key": "abc", "template_id": "t", "caption": None},
        {"key": "../etc/passwd", "template_id": "t", "caption": "hi"},
        {"key": "ABC", "template_id": "t", "caption": "hi"},
        {"key": "a" * 65, "template_id": "t", "caption": "hi"},
        {"key": "abc", "template_id": "Bad Template", "caption": "hi"},
        {"key": "abc", "template_id": "t;rm", "caption": "hi"},
        {"key": "abc", "template_id": "t", "caption": ""},
        {"key": "abc", "template_id": "t", "caption": "x" * 1001},
    ],
)
def test_junk_events_are_bad_input(event: Any) -> None:
    with pytest.raises(BadInput):
        RenderJob.from_event(event)


def test_template_id_rule_matches_the_renderers() -> None:
    assert TEMPLATE_ID_PATTERN.pattern.strip("^$") == templates.TEMPLATE_ID_PATTERN.pattern.strip(
        "^$"
    )


def test_clamp_fraction_and_retry_after() -> None:
    assert [clamp_fraction(v) for v in (-1.0, 0.25, 1.5, float("nan"))] == [0.0, 0.25, 1.0, 0.0]
    assert [retry_after_seconds(v) for v in (0.0, 0.4, 1.0, 1.2, 7.0)] == [1, 1, 1, 2, 7]
