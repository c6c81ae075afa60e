"""prompt_call: one retry at once of a failure botocore would retry, only while a whole try
still fits in the call's bound (the wire-level version: tests/records/test_dynamodb.py's stalled
endpoint, tests/service/test_frozen_records.py through the real server)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from loopmark import prompt_calls
from loopmark.prompt_calls import (
    CALL_SECONDS,
    READ_SECONDS,
    REQUEST_SECONDS,
    TRY_SECONDS,
    prompt_call,
    retried,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def in_request(budget_s: float = REQUEST_SECONDS) -> Iterator[None]:
    """Within it, this thread serves a request (its prompt calls' budget: ``budget_s``)."""
    prompt_calls.request_begins(budget_s)
    try:
        yield
    finally:
        prompt_calls.request_ends()


def client_error(code: str, status: int) -> ClientError:
    # Only the parts retried() reads; botocore's own responses carry more (request ids, ...).
    response: Any = {
        "Error": {"Code": code, "Message": ""},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetItem")


def test_the_bound_leaves_room_for_a_retry_after_a_read_timeout() -> None:
    # A read timeout is READ_SECONDS plus the try's own CPU time (0.3 s allowed for a starved
    # machine): retried; the two tries and the request around them stay under the 2 s.
    assert CALL_SECONDS - TRY_SECONDS >= READ_SECONDS + 0.3
    assert CALL_SECONDS <= 1.7


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url="http://x"),
        EndpointConnectionError(endpoint_url="http://x"),
        client_error("ProvisionedThroughputExceededException", 400),
        client_error("InternalServerError", 500),
    ],
    ids=["read timeout", "no connection", "throttled", "5xx"],
)
def test_a_transient_failure_is_tried_again_at_once(error: Exception) -> None:
    clock, tries = Clock(), []

    def call() -> str:
        tries.append(clock.now)
        clock.now += 0.6
        if len(tries) == 1:
            raise error
        return "answer"

    assert prompt_call(call, clock=clock) == "answer"
    assert tries == [0.0, 0.6]  # no pause before the retry


def test_a_second_failure_is_raised_and_there_is_no_third_try() -> None:
    clock, tries = Clock(), []

    def call() -> str:
        tries.append(clock.now)
        clock.now += 0.6
        raise ReadTimeoutError(endpoint_url="http://x")

    with pytest.raises(ReadTimeoutError):
        prompt_call(call, clock=clock)
    assert len(tries) == 2


def test_no_retry_when_a_whole_try_would_not_fit() -> None:
    clock, tries = Clock(), []

    def call() -> str:
        tries.append(clock.now)
        clock.now += CALL_SECONDS - TRY_SECONDS + 0.01  # connected late, then timed out
        raise ReadTimeoutError(endpoint_url="http://x")

    with pytest.raises(ReadTimeoutError):
        prompt_call(call, clock=clock)
    assert len(tries) == 1


@pytest.mark.parametrize(
    "error",
    [client_error("ConditionalCheckFailedException", 400), ValueError("a bug")],
    ids=["an answer", "not the backend"],
)
def test_what_a_retry_cannot_change_is_not_retried(error: Exception) -> None:
    tries = []

    def call() -> str:
        tries.append(1)
        raise error

    with pytest.raises(type(error)):
        prompt_call(call)
    assert len(tries) == 1
    assert not retried(error)


def test_a_requests_calls_wait_its_budget_in_all_not_a_call_s_each() -> None:
    # Review: a cache hit makes two records calls; on a backend that answers only a retry,
    # each took up to 1.7 s, 3.4 s in all. Within a request, no try is sent that could take
    # the request's tries past REQUEST_SECONDS: the second call is refused before it is sent.
    clock, tries = Clock(), []

    def slow_then_answers() -> str:
        tries.append(clock.now)
        clock.now += READ_SECONDS + 0.05
        if len(tries) % 2:
            raise ReadTimeoutError(endpoint_url="http://x")
        return "answer"

    with in_request():
        assert prompt_call(slow_then_answers, clock=clock) == "answer"  # 1.3 s, one retry
        with pytest.raises(BotoCoreError, match="not sent: the request has waited 1.30 s"):
            prompt_call(slow_then_answers, clock=clock)
        assert len(tries) == 2
        assert clock.now <= REQUEST_SECONDS
    assert prompt_call(slow_then_answers, clock=clock) == "answer"  # outside a request: sent
    assert len(tries) == 4


def test_a_retry_past_the_budget_is_not_sent_and_the_first_error_is_raised() -> None:
    clock, tries = Clock(), []

    def times_out() -> str:
        tries.append(clock.now)
        clock.now += 0.7
        raise ReadTimeoutError(endpoint_url="http://x")

    with in_request(budget_s=1.0):
        with pytest.raises(ReadTimeoutError):
            prompt_call(times_out, clock=clock)
    assert len(tries) == 1  # 0.7 s spent: a second 0.8 s try would pass 1.0 s


def test_a_budget_error_reads_as_the_backend_unavailable(aws: str) -> None:
    # The adapters turn a BotoCoreError into their backend's Unavailable (a 503 with
    # Retry-After): so does a try not sent for want of the request's time.
    from loopmark.errors import RecordsUnavailable
    from loopmark.records.dynamodb import DynamoTable

    table = DynamoTable("loopmark-budget-test")
    with in_request(budget_s=0.0):
        with pytest.raises(ReadTimeoutError):
            prompt_call(timed_out)  # a try failed: the budget now holds
        with pytest.raises(RecordsUnavailable, match="not sent"):
            table.get_item("k")


def test_a_patient_call_is_not_bounded_by_the_requests_budget() -> None:
    # A listing read page by page (a patient port method: service.breaker.call_patient) may
    # rightly take longer than the request's budget; it neither waits on it nor spends it.
    clock = Clock()

    def page() -> str:
        clock.now += 0.5
        return "page"

    with in_request(budget_s=1.0):
        with pytest.raises(ReadTimeoutError):
            prompt_call(timed_out, clock=clock, call_s=0.0)  # strained, nothing spent
        with prompt_calls.unbudgeted():
            assert [prompt_call(page, clock=clock) for _ in range(6)] == ["page"] * 6
        assert prompt_call(page, clock=clock) == "page"  # the budget is back, unspent
        with pytest.raises(BotoCoreError, match="waited 0.50 s of its 1.0 s"):
            prompt_call(page, clock=clock)


def test_many_quick_answers_are_never_refused_for_their_number() -> None:
    # The budget holds only once a try has failed: an admin page's many quick reads all go.
    clock = Clock()

    def quick() -> str:
        clock.now += 0.05
        return "answer"

    with in_request(budget_s=1.0):
        assert [prompt_call(quick, clock=clock) for _ in range(100)] == ["answer"] * 100


def timed_out() -> str:
    raise ReadTimeoutError(endpoint_url="http://x")
