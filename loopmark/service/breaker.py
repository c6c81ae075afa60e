"""Circuit breakers: a backend that keeps failing is left alone for a while, so callers get an
immediate 503 with Retry-After instead of waiting out its timeouts one request thread at a time.

One :class:`CircuitBreaker` per backend (records, storage). It is *closed* while the backend
answers; after ``failures`` consecutive failures (the backend's ``*Unavailable`` error: a
timeout, a refused connection, an AWS error) it *opens* for ``cooldown_s``, and every call fails
at once with that error, carrying the remaining cool-down as ``retry_after_s``. Once the
cool-down is over one call goes through as a probe (*half-open*) while the others are still
refused: its answer closes the breaker, its failure opens it again for another cool-down.

:func:`guarded` wraps a port (any object: a BlobStore, a kind of records) in the breaker without
knowing its methods, so a method added to a port later is guarded too. Some methods are never
refused, only counted (``always``): the writes that finish a render already under way, so an
outage of the request path does not throw away work that can still be saved. Some are not
guarded at all (``exempt``): those that touch no backend (``close``, presigning a URL) or run
outside requests (``setup``).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar, cast

from loopmark.errors import BackendUnavailable

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Consecutive failures that open a breaker: one stalled call is a blip, five in a row an outage.
DEFAULT_FAILURES = 5
# How long an open breaker refuses calls before one probe may try the backend again.
DEFAULT_COOLDOWN_SECONDS = 10.0
# Retry-After while the probe is out: it answers within the backends' short timeouts.
PROBE_RETRY_AFTER_SECONDS = 1
# Methods no port guards: they reach no backend, or run from the command line.
NEVER_GUARDED = frozenset({"close", "setup"})

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Counts a backend's consecutive failures and refuses calls while it is deemed down.

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
        cooldown_s: float = DEFAULT_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or cooldown_s <= 0:
            raise ValueError("a breaker needs failures >= 1 and a positive cool-down")
        self.name = name
        self.error = error
        self.failures = failures
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> State:
        with self._lock:
            return self._state

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` unless the breaker is open (then ``error`` at once)."""
        probe = self._admit()
        return self._run(fn, probe, *args, **kwargs)

    def count(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` whatever the state, its outcome counted like a call's."""
        return self._run(fn, False, *args, **kwargs)

    def _run(self, fn: Callable[P, T], probe: bool, /, *args: P.args, **kwargs: P.kwargs) -> T:
        answered = False
        try:
            result = fn(*args, **kwargs)
            answered = True
            return result
        except self.error:
            self._failed(probe)
            raise
        except Exception:
            answered = True  # the backend answered (no such file, a failed condition...)
            raise
        finally:
            if answered:
                self._answered(probe)
            elif probe:
                with self._lock:  # interrupted (KeyboardInterrupt...): let another probe go
                    self._probing = False

    def _admit(self) -> bool:
        """Whether this call is the half-open probe; raises ``error`` when it is refused."""
        with self._lock:
            if self._state == "closed":
                return False
            remaining = self._opened_at + self.cooldown_s - self.clock()
            if self._state == "open" and remaining > 0:
                retry_after_s = max(1, math.ceil(remaining))
            elif not self._probing:
                self._state, self._probing = "half_open", True
                return True
            else:
                retry_after_s = PROBE_RETRY_AFTER_SECONDS
        raise self.error(
            f"{self.name} backend unavailable (circuit open after {self.failures} failures in "
            f"a row); retry in {retry_after_s} s",
            retry_after_s=retry_after_s,
        )

    def _answered(self, probe: bool) -> None:
        with self._lock:
            self._consecutive = 0
            if probe:
                self._probing = False
            if self._state != "closed":
                self._state = "closed"
                log.warning("%s backend answers again: circuit closed", self.name)

    def _failed(self, probe: bool) -> None:
        with self._lock:
            self._consecutive += 1
            if probe:
                self._probing = False
            reopen = probe or (self._state == "closed" and self._consecutive >= self.failures)
            if reopen:
                self._state, self._opened_at = "open", self.clock()
        if reopen:
            log.error(
                "%s backend failing (%d in a row): circuit open for %.0f s",
                self.name,
                self._consecutive,
                self.cooldown_s,
            )


class _Guarded:
    """Delegates every attribute to ``port``; its methods run through ``breaker``."""

    def __init__(
        self, port: object, breaker: CircuitBreaker, always: frozenset[str], exempt: frozenset[str]
    ) -> None:
        self._port = port
        self._breaker = breaker
        self._always = always
        self._exempt = exempt | NEVER_GUARDED

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._port, name)
        if name.startswith("_") or name in self._exempt or not callable(value):
            return value
        run = self._breaker.count if name in self._always else self._breaker.call
        return functools.wraps(value)(functools.partial(run, value))

    def __repr__(self) -> str:
        return f"guarded({self._port!r}, breaker={self._breaker.name!r})"


def guarded(
    port: T,
    breaker: CircuitBreaker,
    *,
    always: frozenset[str] = frozenset(),
    exempt: frozenset[str] = frozenset(),
) -> T:
    """``port`` behind ``breaker``: the same port (same methods, same errors), whose calls are
    refused at once while the breaker is open. Methods in ``always`` are never refused, only
    counted; those in ``exempt`` (and ``close``, ``setup``) go straight to the port."""
    return cast(T, _Guarded(port, breaker, always, exempt))
