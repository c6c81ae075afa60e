"""prompt_call: one retry at once of a failure botocore would retry, only while a whole try
still fits in the call's bound (the wire-level version: tests/records/test_dynamodb.py's stalled
endpoint, tests/service/test_frozen_records.py through the real server)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from loopmark.prompt_calls import CALL_SECONDS, READ_SECONDS, TRY_SECONDS, prompt_call, retried


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


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
