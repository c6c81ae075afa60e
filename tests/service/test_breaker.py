"""The circuit breaker on a fake clock, and the guard that puts a port behind it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from loopmark.errors import RecordsUnavailable, StorageUnavailable
from loopmark.service.breaker import PROBE_RETRY_AFTER_SECONDS, CircuitBreaker, guarded
from loopmark.storage.base import BlobStore
from loopmark.storage.local import LocalBlobStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Backend:
    """A port whose every call fails while ``down`` (as a timed-out backend does)."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    def get(self, key: str) -> str:
        self.calls += 1
        if self.down:
            raise RecordsUnavailable("read timeout")
        return key.upper()

    def missing(self) -> None:
        self.calls += 1
        raise FileNotFoundError("no such key")  # an answer, not an outage

    def complete(self) -> str:
        self.calls += 1
        if self.down:
            raise RecordsUnavailable("write timeout")
        return "done"

    def close(self) -> None:
        self.calls += 1


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(
        "records", error=RecordsUnavailable, failures=3, cooldown_s=10, clock=clock
    )


def fail_times(port: Backend, n: int) -> None:
    for _ in range(n):
        with pytest.raises(RecordsUnavailable, match="read timeout"):
            port.get("k")


@pytest.fixture
def opened(breaker: CircuitBreaker) -> tuple[Backend, Backend]:
    """A backend that is down and the port over it, whose failures opened the breaker."""
    backend = Backend()
    port = guarded(backend, breaker, always=frozenset({"complete"}))
    backend.down = True
    fail_times(port, 3)
    assert breaker.state == "open"
    return backend, port


def test_opens_after_consecutive_failures_and_refuses_at_once(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    backend = Backend()
    port = guarded(backend, breaker)
    backend.down = True
    fail_times(port, 2)
    assert breaker.state == "closed"
    fail_times(port, 1)
    assert breaker.state == "open"
    clock.now += 3.2
    with pytest.raises(RecordsUnavailable, match="circuit open") as refused:
        port.get("k")
    assert refused.value.retry_after_s == 7  # the remaining cool-down, rounded up
    assert backend.calls == 3  # refused without reaching the backend


def test_an_answer_resets_the_count(breaker: CircuitBreaker) -> None:
    backend = Backend()
    port = guarded(backend, breaker)
    backend.down = True
    fail_times(port, 2)
    backend.down = False
    assert port.get("k") == "K"
    backend.down = True
    fail_times(port, 2)
    assert breaker.state == "closed"
    # A missing file is the backend answering, not failing.
    with pytest.raises(FileNotFoundError):
        port.missing()
    fail_times(port, 2)
    assert breaker.state == "closed"


def test_half_open_probe_closes_when_the_backend_answers(
    breaker: CircuitBreaker, clock: FakeClock, opened: tuple[Backend, Backend]
) -> None:
    backend, port = opened
    clock.now += 10
    backend.down = False
    assert port.get("k") == "K"  # the probe
    assert breaker.state == "closed"
    assert port.get("j") == "J"


def test_a_failed_probe_opens_for_another_cooldown(
    breaker: CircuitBreaker, clock: FakeClock, opened: tuple[Backend, Backend]
) -> None:
    backend, port = opened
    clock.now += 10
    fail_times(port, 1)  # the probe reached the backend and failed
    assert breaker.state == "open"
    clock.now += 9
    with pytest.raises(RecordsUnavailable) as refused:
        port.get("k")
    assert refused.value.retry_after_s == 1
    assert backend.calls == 4


def test_one_probe_at_a_time(breaker: CircuitBreaker, clock: FakeClock) -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow(Backend):
        def get(self, key: str) -> str:
            entered.set()
            assert release.wait(10)
            return key

    backend = Slow()
    port = guarded(backend, breaker)
    for _ in range(3):
        with pytest.raises(RecordsUnavailable):
            breaker.call(_down().get, "k")
    clock.now += 10
    probe = threading.Thread(target=port.get, args=("k",))
    probe.start()
    assert entered.wait(10)
    with pytest.raises(RecordsUnavailable) as refused:
        port.get("other")
    assert refused.value.retry_after_s == PROBE_RETRY_AFTER_SECONDS
    release.set()
    probe.join(10)
    assert breaker.state == "closed"


def _down() -> Backend:
    backend = Backend()
    backend.down = True
    return backend


def test_always_methods_run_while_open_and_close_it_when_they_succeed(
    breaker: CircuitBreaker, opened: tuple[Backend, Backend]
) -> None:
    backend, port = opened
    with pytest.raises(RecordsUnavailable, match="write timeout"):
        port.complete()  # tried, not refused
    assert backend.calls == 4
    backend.down = False
    assert port.complete() == "done"
    assert breaker.state == "closed"


def test_exempt_and_close_go_straight_through(breaker: CircuitBreaker) -> None:
    backend = Backend()
    port = guarded(backend, breaker, exempt=frozenset({"get"}))
    backend.down = True
    for _ in range(5):
        with pytest.raises(RecordsUnavailable):
            port.get("k")
    assert breaker.state == "closed"  # never counted
    port.close()
    assert backend.calls == 6


def test_a_guarded_blob_store_is_still_a_blob_store(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    breaker = CircuitBreaker("storage", error=StorageUnavailable)
    port = guarded(store, breaker, exempt=frozenset({"url", "local_path"}))
    assert isinstance(port, BlobStore)
    port.put("a/b.gif", b"GIF", content_type="image/gif")
    assert port.get("a/b.gif") == b"GIF"
    assert port.urls_are_public is store.urls_are_public
    with pytest.raises(FileNotFoundError):
        port.get("a/missing.gif")
    assert breaker.state == "closed"


def test_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", error=RecordsUnavailable, failures=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", error=RecordsUnavailable, cooldown_s=0)
