"""LambdaDispatcher: render jobs sent to an AWS Lambda function as asynchronous invocations.

Each submit is one ``Invoke`` with ``InvocationType="Event"``: Lambda queues the event and runs
the render handler, which claims the render's lease, renders and writes the records. So this
process never learns how a job went: its states come from the render records (the service reads
them); the dispatcher only remembers what it submitted lately, so a job asked for before its
handler has claimed the lease reads "queued" rather than unknown.

A throttled or failed Invoke is tried again with exponential backoff (SUBMIT_ATTEMPTS in all,
about a second at most), then refused as DispatchUnavailable: 503 with Retry-After upstream,
never a job that reads "queued" for ever. The endpoint, region and credentials
come from the environment as boto3 reads them (``AWS_ENDPOINT_URL_LAMBDA`` points it at
``loopmark lambda-local`` in tests and local runs).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from loopmark.dispatch.base import QUEUED, JobState, RenderJob, retry_after_seconds
from loopmark.errors import ConfigInvalid, DispatchUnavailable

if TYPE_CHECKING:
    # boto3-stubs: for type checking only, the running code never imports it.
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_lambda.literals import InvocationTypeType
    from mypy_boto3_lambda.type_defs import InvocationResponseTypeDef

LAMBDA_SCHEME = "lambda://"
# A request thread waiting on a dead endpoint is worse than a prompt 503: short timeouts, and
# botocore itself makes one attempt only (its "standard" mode counts the first attempt in
# total_max_attempts); submit's own loop retries, with backoff.
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 5
TOTAL_MAX_ATTEMPTS = 1
# Invoke attempts per submit, and the first backoff (doubled each time, with jitter): three
# attempts wait 0.2 + 0.4 s at most between them.
SUBMIT_ATTEMPTS = 3
BACKOFF_SECONDS = 0.2
# Threads of one process share the client; its HTTP pool must not be the bottleneck.
MAX_POOL_CONNECTIONS = 50
# How long a submitted key reads as "queued" here while its handler has not claimed the lease
# (a container image's cold start takes seconds); once it has, the record is the truth.
RECENT_SUBMIT_SECONDS = 90.0
# Submits of one key this close together send one event (fifty visitors asking at once); a
# later submit (a render to take over after a crash) is sent again: the lease keeps it single.
SUBMIT_DEDUP_SECONDS = 5.0
# Bounds the memory of that short list whatever the submit rate.
RECENT_SUBMIT_MAX_KEYS = 10_000
# Retry-After when Lambda throttles and does not say how long to wait.
THROTTLE_RETRY_SECONDS = 5

# A function name, a partial ARN (account:function:name) or a full ARN, with an optional
# version or alias qualifier, as Lambda's Invoke accepts them.
FUNCTION_NAME_PATTERN = re.compile(
    r"(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?"
    r"[a-zA-Z0-9_-]{1,64}(:(\$LATEST|[a-zA-Z0-9_-]+))?"
)

Clock = Callable[[], float]


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _retry_after(exc: ClientError) -> int:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    try:
        return retry_after_seconds(float(headers.get("retry-after", THROTTLE_RETRY_SECONDS)))
    except ValueError:
        return THROTTLE_RETRY_SECONDS


class TransientDispatchFailure(DispatchUnavailable):
    """A failure that another attempt may not meet (throttling, the network, Lambda's 5xx)."""


class LambdaDispatcher:
    """Submits jobs to ``function_name``; the client is made on first use (no I/O before)."""

    def __init__(
        self,
        function_name: str,
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if FUNCTION_NAME_PATTERN.fullmatch(function_name) is None:
            raise ConfigInvalid(f"not a valid Lambda function name: {function_name!r}")
        self.function_name = function_name
        self._clock = clock
        self._sleep = sleep
        self._client: LambdaClient | None = None
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, float] = OrderedDict()  # key → submit time, oldest first

    @classmethod
    def from_url(cls, url: str) -> LambdaDispatcher:
        """``lambda://function-name`` (or an ARN after the scheme)."""
        if not url.startswith(LAMBDA_SCHEME):
            raise ConfigInvalid(f"LOOPMARK_DISPATCH for Lambda must be lambda://name, got {url!r}")
        name = url[len(LAMBDA_SCHEME) :]
        if FUNCTION_NAME_PATTERN.fullmatch(name) is None:
            raise ConfigInvalid(
                f"LOOPMARK_DISPATCH must look like lambda://function-name, got {url!r}"
            )
        return cls(name)

    def __repr__(self) -> str:
        return f"LambdaDispatcher(function_name={self.function_name!r})"

    @property
    def client(self) -> LambdaClient:
        if self._client is None:
            with self._lock:
                # boto3's default session is not thread-safe; a private session under a lock is.
                if self._client is None:
                    config = Config(
                        connect_timeout=CONNECT_TIMEOUT_SECONDS,
                        read_timeout=READ_TIMEOUT_SECONDS,
                        retries={"total_max_attempts": TOTAL_MAX_ATTEMPTS, "mode": "standard"},
                        max_pool_connections=MAX_POOL_CONNECTIONS,
                    )
                    self._client = boto3.session.Session().client("lambda", config=config)
        return self._client

    @contextmanager
    def _translate(self, operation: str) -> Iterator[None]:
        """Speak the port's language: every failure is DispatchUnavailable (503 upstream) with
        the boto error kept as its cause; throttling carries AWS's Retry-After. Throttling,
        the network and Lambda's own 5xx are worth another try (TransientDispatchFailure)."""
        where = f"Lambda {operation} of {self.function_name}"
        try:
            yield
        except ClientError as exc:
            code = _error_code(exc)
            if code == "TooManyRequestsException":
                raise TransientDispatchFailure(
                    "Too many renders are running; please try again shortly.",
                    retry_after_s=_retry_after(exc),
                ) from exc
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            failure = TransientDispatchFailure if status >= 500 else DispatchUnavailable
            raise failure(f"{where} failed: {code or exc}") from exc
        except BotoCoreError as exc:
            raise TransientDispatchFailure(f"{where} failed: {exc}") from exc

    def _invoke(
        self, operation: str, invocation_type: InvocationTypeType, payload: bytes
    ) -> InvocationResponseTypeDef:
        with self._translate(operation):
            response = self.client.invoke(
                FunctionName=self.function_name, InvocationType=invocation_type, Payload=payload
            )
            body = response.get("Payload")
            if body is not None:
                body.close()
        return response

    def _prune_locked(self, now: float) -> None:
        """Forget submissions older than RECENT_SUBMIT_SECONDS, and the oldest past the bound."""
        while self._recent:
            key, submitted = next(iter(self._recent.items()))
            fresh = now - submitted < RECENT_SUBMIT_SECONDS
            if fresh and len(self._recent) <= RECENT_SUBMIT_MAX_KEYS:
                break
            del self._recent[key]

    def _queued(self, key: str) -> JobState:
        # Lambda starts asynchronous events at once, so a job is next in its own queue; how long
        # it takes is only known to the records, hence no ETA.
        return JobState(key=key, state=QUEUED, position=1, progress=0.0, eta_seconds=None)

    def submit(self, job: RenderJob) -> JobState:
        with self._lock:
            now = self._clock()
            self._prune_locked(now)
            submitted = self._recent.get(job.key)
            if submitted is not None and now - submitted < SUBMIT_DEDUP_SECONDS:
                return self._queued(job.key)
            # Reserved before the network call, so fifty simultaneous submits send one event.
            self._recent[job.key] = now
            self._recent.move_to_end(job.key)
        payload = json.dumps(job.to_event(), ensure_ascii=False).encode("utf-8")
        try:
            self._invoke_with_backoff(payload)
        except BaseException:
            with self._lock:
                self._recent.pop(job.key, None)
            raise
        return self._queued(job.key)

    def _invoke_with_backoff(self, payload: bytes) -> None:
        """One asynchronous Invoke, tried SUBMIT_ATTEMPTS times with exponential backoff and
        jitter while Lambda throttles or cannot be reached; the last failure is raised."""
        for attempt in range(SUBMIT_ATTEMPTS):
            try:
                response = self._invoke("invoke", "Event", payload)
            except TransientDispatchFailure:
                if attempt + 1 == SUBMIT_ATTEMPTS:
                    raise
                self._sleep(BACKOFF_SECONDS * 2**attempt * random.uniform(0.5, 1.0))
                continue
            if response.get("StatusCode") != 202 or response.get("FunctionError"):
                raise DispatchUnavailable(
                    f"Lambda invoke of {self.function_name} was not accepted "
                    f"(status {response.get('StatusCode')})"
                )
            return

    def state(self, key: str) -> JobState | None:
        with self._lock:
            self._prune_locked(self._clock())
            return self._queued(key) if key in self._recent else None

    def wait(self, key: str, timeout_s: float) -> JobState | None:
        """Answers at once: the outcome is only ever written to the records, which the caller
        polls; blocking here could not learn anything more."""
        return self.state(key)

    def queue_depth(self) -> int:
        # Lambda holds asynchronous events in AWS's own queue; this process holds none.
        return 0

    def check(self) -> None:
        """A DryRun invoke: the function exists and these credentials may invoke it."""
        self._invoke("dry-run invoke", "DryRun", b"{}")

    def close(self, *, grace_s: float = 0.0) -> None:
        """Nothing runs here to wait for (``grace_s`` is the port's): the client is closed."""
        with self._lock:
            client, self._client = self._client, None
            self._recent.clear()
        if client is not None:
            client.close()
