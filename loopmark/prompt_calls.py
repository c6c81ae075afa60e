"""Backend calls on a visitor's request path: a short try, one retry at once, both bounded.

A request waiting on a stalled backend (DynamoDB, S3) must give up and answer 503 with
Retry-After within 2 s (issue 10). botocore's own retries cannot promise it: its "standard" mode
pauses a random 0-1 s before the second try, so two 1 s tries took up to 3 s (the soak saw 503s
at 2.0-2.3 s, a test 4.1 s for a cache hit that made two records calls). So the request path's
clients make a single try each (botocore's retries off, ``CLIENT``) and :func:`prompt_call`
makes the one retry itself, with no pause, and only while a whole second try still fits in
``CALL_SECONDS``:

- a try waits at most ``TRY_SECONDS``: a new connection that connects at the last moment, then
  an answer that never comes (a frozen or dead endpoint sends nothing, so the read timeout,
  which bounds each socket read, bounds the try);
- the retry starts only if at most ``CALL_SECONDS - TRY_SECONDS`` (0.9 s) have passed: a read
  timeout is ``READ_SECONDS`` plus the try's own CPU time (signing, parsing: milliseconds, but
  up to 0.3 s on a starved machine: the quick soak's first run, with 0.05 s of slack here,
  skipped two retries that way), so it is retried; a try that also waited to connect is not;
- so a call takes at most ``CALL_SECONDS`` (1.7 s) and the retry's own CPU time, and a request
  that gives up on its backend after one such call (service.breaker keeps a request from
  waiting on a backend that already failed it, or that is stalled) answers within 2 s; on a
  frozen endpoint, two read timeouts: 1.2 s.

The timeouts are far above what a backend that answers takes: DynamoDB answers in single-digit
milliseconds, and the tests' moto server (one request at a time) answered a GetItem in 6 ms
alone, 88 / 143 ms (p50 / p99) with 16 threads asking at once and 184 / 347 ms with 32.

The errors retried are those botocore's standard mode retries (a connection or read failure, an
HTTP 5xx, a throttling or transient error code). Work outside requests (a render finishing, gc,
the requeue sweep) uses the adapters' more patient clients.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

CONNECT_SECONDS = 0.2
READ_SECONDS = 0.6
TRY_SECONDS = CONNECT_SECONDS + READ_SECONDS
CALL_SECONDS = 1.7
# What a request's tries may wait in all, whatever the calls they belong to: a try is not sent
# that could end past it. Under the 2 s, with room for the request's own work.
REQUEST_SECONDS = 1.8
# botocore settings of a request path's client: one try, the retry is prompt_call's.
CLIENT: dict[str, Any] = {
    "connect_timeout": CONNECT_SECONDS,
    "read_timeout": READ_SECONDS,
    "retries": {"total_max_attempts": 1, "mode": "standard"},
}

# What botocore's standard retry mode retries (botocore.retries.standard), besides connection
# and read failures: HTTP statuses, and error codes of transient failures and of throttling.
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRIED_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
    }
)


def retried(exc: BaseException) -> bool:
    """Whether ``exc`` (from a boto3 call) is a failure a second try may not meet."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return error.get("Code") in RETRIED_CODES or status in RETRIED_STATUSES
    return False


class _Budget:
    """The time a request has waited on its backends' tries so far, and whether one of them
    failed as a stalled or overloaded backend fails (:func:`retried`). Only then does the limit
    hold: a request whose every try is answered (an admin page's many quick reads) is never
    refused for their number."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.spent_s = 0.0
        self.strained = False

    def allows(self, try_s: float) -> bool:
        return not self.strained or self.spent_s + try_s <= self.limit_s


_request = threading.local()


def request_begins(budget_s: float = REQUEST_SECONDS) -> None:
    """A request begins on this thread: its prompt calls' tries may wait ``budget_s`` in all."""
    _request.budget = _Budget(budget_s)


def request_ends() -> None:
    _request.budget = None


@contextlib.contextmanager
def unbudgeted() -> Iterator[None]:
    """Within it, this thread's prompt calls are not bounded by its request's budget (nor
    counted against it): a call that may rightly take long, a listing read page by page."""
    budget = _budget()
    _request.budget = None
    try:
        yield
    finally:
        _request.budget = budget


def _budget() -> _Budget | None:
    budget: _Budget | None = getattr(_request, "budget", None)
    return budget


@functools.cache
def _budget_spent() -> Callable[..., Exception]:
    """The error of a try not sent for want of the request's time: a BotoCoreError, so the
    adapters report it as they report a timeout (their backend unavailable, a 503)."""
    from botocore.exceptions import BotoCoreError

    class RequestBudgetSpent(BotoCoreError):
        fmt = "not sent: the request has waited {spent:.2f} s of its {limit:.1f} s on backends"

    return RequestBudgetSpent


def prompt_call(
    fn: Callable[[], T],
    *,
    call_s: float = CALL_SECONDS,
    try_s: float = TRY_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``fn()`` (one try of a client made with ``CLIENT``), tried once more at once after a
    failure :func:`retried` names, if a whole try (``try_s``) still fits within ``call_s`` of
    the start; otherwise, and after a second failure, the error as it came. Within a request
    (:func:`request_begins`), once one of its tries has failed, no try is sent that could take
    the request's tries past its budget: its several calls (a cache hit's word-list check, then
    its record) on a backend that answers only after a retry each wait REQUEST_SECONDS in all,
    not twice CALL_SECONDS.
    """
    budget = _budget()

    def attempt() -> T:
        if budget is None:
            return fn()
        if not budget.allows(try_s):
            raise _budget_spent()(spent=budget.spent_s, limit=budget.limit_s)
        sent = clock()
        try:
            return fn()
        except Exception as exc:
            budget.strained = budget.strained or retried(exc)
            raise
        finally:
            budget.spent_s += clock() - sent

    started = clock()
    try:
        return attempt()
    except Exception as exc:
        if (
            not retried(exc)
            or clock() - started + try_s > call_s
            or (budget is not None and not budget.allows(try_s))
        ):
            raise
    return attempt()
