"""Circuit breakers: a backend that keeps failing is left alone for a while, so callers get an
immediate 503 with Retry-After instead of waiting out its timeouts one request thread at a time.

One :class:`CircuitBreaker` per backend (records, storage). It is *closed* while the backend
answers. It keeps the outcomes of the last ``window_calls`` calls (those of the last ``window_s``
seconds) and *opens* when at least ``failures`` of them failed (the backend's ``*Unavailable``
error: a timeout, a refused connection, an AWS error) and they are at least ``failure_rate`` of
them: a frozen backend (every call failing) opens it after a handful of calls, while a slow
moment in which a few calls among many time out costs those calls only, not everybody's.
Open, every call fails at once with that error, carrying the remaining cool-down as
``retry_after_s``. The cool-down is short (``cooldown_s``, 2 s by default), after which one call
goes through as a probe (*half-open*) while the others are still refused: its answer closes the
breaker, its failure opens it again for another cool-down. So a backend that comes back is used
again within a cool-down and a probe, instead of every request being refused for a long fixed
time (with 10 s before, the soak's frozen DynamoDB kept the site refusing for up to 10 s after
it answered again).

:func:`guarded` wraps a port (any object: a BlobStore, a kind of records) in the breaker without
knowing its methods, so a method added to a port later is guarded too. Some methods are never
refused, only counted (``always``): the writes that finish a render already under way, so an
outage of the request path does not throw away work that can still be saved. Some are not
guarded at all (``exempt``): those that touch no backend (``close``, presigning a URL) or run
outside requests (``setup``).

Within one request (between :func:`request_begins` and :func:`request_ends`, which the web app
calls), a backend that failed a call is not asked again: the request's later calls to it are
refused at once, with a Retry-After of 1 s (or the open breaker's), and neither counted nor
sent. A request may make several calls to one backend (a cache hit: the word lists' version
check, which falls back to the lists it has, then the render's record); each waits at most a
prompt call's 1.7 s on a stalled backend (loopmark.prompt_calls), so without this a request
could wait that long twice or more. With it, a request waits on a stalled backend once, and is
answered within 2 s. Outside requests (a render worker, the command line) nothing is remembered.

A breaker over a remote backend (DynamoDB, S3: ``stall_s`` given) also refuses a call at once,
without counting it, while the backend is *stalled*: a call has been waiting ``stall_s`` (a read
timeout) and nothing has answered since that call was sent (calls only counted, ``always``, are
not watched: a render's last writes go through a patient client and may wait longer; nor are
the port methods that may rightly take long, ``patient``: a file streamed from S3, a listing
read page by page, whose wait would otherwise refuse everyone else's calls). The
failure count needs the stuck calls to fail before it opens, and when a burst fills every
request thread, the requests queued behind them are handed threads as the first of those calls
fail, before it opens: each such request then waited for a thread and for its own call (2.4 s,
measured). A slow moment in
which answers keep coming is not a stall; once the stuck calls have failed, the next call goes
through.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar, cast

from loopmark import prompt_calls
from loopmark.errors import BackendUnavailable

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Failed calls within the window that may open a breaker (with the failure rate below): a frozen
# backend opens it after this many, one stalled call among many is a blip.
DEFAULT_FAILURES = 5
# The share of the window's calls that must have failed: a slow moment in which some calls time
# out while most answer is not an outage.
DEFAULT_FAILURE_RATE = 0.5
# The window: the outcomes of the last so many calls, and none older than so many seconds. A
# count, so that under heavy traffic a backend that stops answering still opens the breaker after
# a few calls' timeouts (10 of 20), not after as many failures as the answers of the seconds before.
DEFAULT_WINDOW_CALLS = 20
DEFAULT_WINDOW_SECONDS = 10.0
# How long an open breaker refuses calls before one probe may try the backend again: short, so
# a backend that answers again is used again at once (the probe costs one call's timeouts).
DEFAULT_COOLDOWN_SECONDS = 2.0
# Retry-After while the probe is out: it answers within the backends' short timeouts.
PROBE_RETRY_AFTER_SECONDS = 1
# Methods no port guards: they reach no backend, or run from the command line.
NEVER_GUARDED = frozenset({"close", "setup"})

State = Literal["closed", "open", "half_open"]

# Per thread: the calls it sent to each backend through a breaker (refused ones are not sent),
# the access log's per-request count (web.logs), so the records' load can be told by endpoint;
# and, while it serves a request, the backends that failed that request.
_sent = threading.local()


def request_begins() -> None:
    """A request begins on this thread: count its calls through every breaker from zero,
    remember until :func:`request_ends` which backends fail it (they are not asked again), and
    bound what its prompt calls may wait in all (loopmark.prompt_calls)."""
    _sent.counts = {}
    _sent.failed = set()
    prompt_calls.request_begins()


def request_ends() -> None:
    """The request this thread served has ended: what failed it is forgotten."""
    _sent.failed = None
    prompt_calls.request_ends()


def _failed_this_request() -> set[str] | None:
    """The names of the backends that failed the request this thread serves (None: none)."""
    failed: set[str] | None = getattr(_sent, "failed", None)
    return failed


def calls_sent() -> dict[str, int]:
    """How many calls this thread has sent through each breaker (by its name) since
    ``request_begins`` (or since it began); the thread's own counts, not a copy."""
    counts: dict[str, int] | None = getattr(_sent, "counts", None)
    if counts is None:
        counts = _sent.counts = {}
    return counts


def _count_sent(name: str) -> None:
    counts = calls_sent()
    counts[name] = counts.get(name, 0) + 1


class CircuitBreaker:
    """Counts a backend's recent failures and refuses calls while it is deemed down.

    ``error`` is the backend's unavailable error: raised when a call is refused, and the only
    exception counted as a failure (any other outcome, a missing file included, means the
    backend answered). Thread-safe; ``clock`` is monotonic seconds (a fake one in tests).
    """

    def __init__(
        self,
        name: str,
        *,
        error: type[BackendUnavailable],
        failures: int = DEFAULT_FAILURES,
        failure_rate: float = DEFAULT_FAILURE_RATE,
        window_calls: int = DEFAULT_WINDOW_CALLS,
        window_s: float = DEFAULT_WINDOW_SECONDS,
        cooldown_s: float = DEFAULT_COOLDOWN_SECONDS,
        stall_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (
            not 1 <= failures <= window_calls
            or not 0 < failure_rate <= 1
            or cooldown_s <= 0
            or window_s <= 0
        ):
            raise ValueError(
                "a breaker needs 1 <= failures <= window_calls, a failure rate in (0, 1], a "
                "positive window and a positive cool-down"
            )
        self.name = name
        self.error = error
        self.failures = failures
        self.failure_rate = failure_rate
        self.window_calls = window_calls
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self.stall_s = stall_s
        self.clock = clock
        self._lock = threading.Lock()
        self._state: State = "closed"
        # The window's outcomes, oldest first: (when, failed), and how many of them failed.
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failed_in_window = 0
        self._opened_at = 0.0
        self._probing = False
        self.opened = 0  # times it opened (a probe's failure included): logs, the soak
        # With stall_s: when each call in flight was sent (by a token of its own), and when the
        # backend last answered a call.
        self._in_flight: dict[int, float] = {}
        self._tokens = 0
        self._answered_at = -math.inf

    @property
    def state(self) -> State:
        with self._lock:
            return self._state

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` unless the breaker is open (then ``error`` at once)."""
        probe = self._admit()
        return self._run(fn, probe, True, *args, **kwargs)

    def call_patient(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """As :meth:`call`, for a call that may rightly take long (a file streamed, pages of a
        listing, each answered in turn): its wait is not read as a stall, nor bounded by its
        request's time for backends (prompt_calls: each of its tries still is)."""
        probe = self._admit()
        with prompt_calls.unbudgeted():
            return self._run(fn, probe, False, *args, **kwargs)

    def count(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` whatever the state, its outcome counted like a call's."""
        return self._run(fn, False, False, *args, **kwargs)

    def _run(
        self, fn: Callable[P, T], probe: bool, watched: bool, /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn`` run and its outcome counted; ``watched``: a call whose wait tells a stall (not
        the counted ones: a render's last writes, on a patient client, may wait longer)."""
        answered = False
        _count_sent(self.name)
        token = self._sent() if watched and self.stall_s is not None else None
        try:
            result = fn(*args, **kwargs)
            answered = True
            return result
        except self.error:
            self._failed(probe)
            failed_here = _failed_this_request()
            if failed_here is not None:
                failed_here.add(self.name)
            raise
        except Exception:
            answered = True  # the backend answered (no such file, a failed condition...)
            raise
        finally:
            if self.stall_s is not None:
                self._returned(token, answered)
            if answered:
                self._answered(probe)
            elif probe:
                with self._lock:  # interrupted (KeyboardInterrupt...): let another probe go
                    self._probing = False

    def _sent(self) -> int:
        """Note a call sent now (stall_s); its token."""
        with self._lock:
            self._tokens += 1
            self._in_flight[self._tokens] = self.clock()
            return self._tokens

    def _returned(self, token: int | None, answered: bool) -> None:
        """Note a call returned (stall_s): ``token`` if it was watched; any answer counts."""
        with self._lock:
            if token is not None:
                del self._in_flight[token]
            if answered:
                self._answered_at = self.clock()

    def _stalled(self, now: float) -> float | None:
        """How long the backend has left a call unanswered, answering nothing since it was
        sent, if at least ``stall_s`` (under the lock); else None."""
        if self.stall_s is None or not self._in_flight:
            return None
        unanswered = [sent for sent in self._in_flight.values() if sent >= self._answered_at]
        waited = now - min(unanswered, default=now)
        return waited if waited >= self.stall_s else None

    def _admit(self) -> bool:
        """Whether this call is the half-open probe; raises ``error`` when it is refused."""
        failed_here = self.name in (_failed_this_request() or ())
        why = "circuit open: too many calls failed"
        with self._lock:
            now = self.clock()
            remaining = self._opened_at + self.cooldown_s - now
            if self._state == "open" and remaining > 0:
                retry_after_s = max(1, math.ceil(remaining))
            elif failed_here:
                retry_after_s, why = PROBE_RETRY_AFTER_SECONDS, "it failed this request already"
            elif self._state == "closed":
                stalled = self._stalled(now)
                if stalled is None:
                    return False
                retry_after_s = PROBE_RETRY_AFTER_SECONDS
                why = f"stalled: a call unanswered for {stalled:.1f} s, nothing answered since"
            elif not self._probing:
                self._state, self._probing = "half_open", True
                return True
            else:
                retry_after_s = PROBE_RETRY_AFTER_SECONDS
        raise self.error(
            f"{self.name} backend unavailable ({why}); retry in {retry_after_s} s",
            retry_after_s=retry_after_s,
        )

    def _record(self, now: float, failed: bool) -> None:
        """Add an outcome to the window and drop those older than it (under the lock)."""
        outcomes = self._outcomes
        outcomes.append((now, failed))
        self._failed_in_window += failed
        while outcomes and (
            len(outcomes) > self.window_calls or outcomes[0][0] <= now - self.window_s
        ):
            self._failed_in_window -= outcomes.popleft()[1]

    def _forget(self) -> None:
        self._outcomes.clear()
        self._failed_in_window = 0

    def _answered(self, probe: bool) -> None:
        with self._lock:
            if probe:
                self._probing = False
            if self._state != "closed":
                # The backend answers again: what failed before it closed is history.
                self._state = "closed"
                self._forget()
                log.warning("%s backend answers again: circuit closed", self.name)
            else:
                self._record(self.clock(), False)

    def _failed(self, probe: bool) -> None:
        with self._lock:
            now = self.clock()
            if probe:
                self._probing = False
            failed, calls = 0, 0
            if self._state == "closed":
                self._record(now, True)
                failed, calls = self._failed_in_window, len(self._outcomes)
            reopen = probe or (
                self._state == "closed"
                and failed >= self.failures
                and failed >= self.failure_rate * calls
            )
            if reopen:
                self._state, self._opened_at = "open", now
                self._forget()
                self.opened += 1
        if reopen:
            log.error(
                "%s backend failing (%s): circuit open for %.0f s",
                self.name,
                "its probe failed" if probe else f"{failed} of its last {calls} calls",
                self.cooldown_s,
            )


class _Guarded:
    """Delegates every attribute to ``port``; its methods run through ``breaker``."""

    def __init__(
        self,
        port: object,
        breaker: CircuitBreaker,
        always: frozenset[str],
        exempt: frozenset[str],
        patient: frozenset[str],
    ) -> None:
        self._port = port
        self._breaker = breaker
        self._always = always
        self._exempt = exempt | NEVER_GUARDED
        self._patient = patient

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._port, name)
        if name.startswith("_") or name in self._exempt or not callable(value):
            return value
        if name in self._always:
            run = self._breaker.count
        elif name in self._patient:
            run = self._breaker.call_patient
        else:
            run = self._breaker.call
        return functools.wraps(value)(functools.partial(run, value))

    def __repr__(self) -> str:
        return f"guarded({self._port!r}, breaker={self._breaker.name!r})"


def guarded(
    port: T,
    breaker: CircuitBreaker,
    *,
    always: frozenset[str] = frozenset(),
    exempt: frozenset[str] = frozenset(),
    patient: frozenset[str] = frozenset(),
) -> T:
    """``port`` behind ``breaker``: the same port (same methods, same errors), whose calls are
    refused at once while the breaker is open. Methods in ``always`` are never refused, only
    counted; those in ``patient`` may rightly take long (their wait is no stall); those in
    ``exempt`` (and ``close``, ``setup``) go straight to the port."""
    return cast(T, _Guarded(port, breaker, always, exempt, patient))
