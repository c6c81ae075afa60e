"""The circuit breaker on a fake clock, and the guard that puts a port behind it.

It opens on a failure *rate* among the last calls, not on a few timeouts in a row, and its
cool-down is short with one half-open probe: the simulations at the end replay a slow moment and
a frozen backend under steady traffic and count what each costs."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from loopmark.errors import RecordsUnavailable, StorageUnavailable
from loopmark.service.breaker import (
    DEFAULT_COOLDOWN_SECONDS,
    PROBE_RETRY_AFTER_SECONDS,
    CircuitBreaker,
    guarded,
    request_begins,
    request_ends,
)
from loopmark.storage.base import BlobStore
from loopmark.storage.local import LocalBlobStore


def state_of(breaker: CircuitBreaker) -> str:
    """The breaker's state now (a call: mypy would keep an earlier assert's narrowing)."""
    return breaker.state


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
    assert state_of(breaker) == "open"
    return backend, port


def test_a_failing_backend_opens_it_and_calls_are_refused_at_once(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    backend = Backend()
    port = guarded(backend, breaker)
    backend.down = True
    fail_times(port, 2)
    assert state_of(breaker) == "closed"
    fail_times(port, 1)
    assert state_of(breaker) == "open"
    assert breaker.opened == 1
    clock.now += 3.2
    with pytest.raises(RecordsUnavailable, match="circuit open") as refused:
        port.get("k")
    assert refused.value.retry_after_s == 7  # the remaining cool-down, rounded up
    assert backend.calls == 3  # refused without reaching the backend


def test_a_few_failures_among_answers_do_not_open_it(breaker: CircuitBreaker) -> None:
    """Three timeouts in a row opened the old breaker (then 10 s of refusals for everybody);
    among answers they are a slow moment, and cost just those three calls."""
    backend = Backend()
    port = guarded(backend, breaker)
    for _ in range(4):
        assert port.get("k") == "K"
    backend.down = True
    fail_times(port, 3)  # 3 of 7: under half
    assert state_of(breaker) == "closed"
    backend.down = False
    assert port.get("k") == "K"
    # A missing file is the backend answering, not failing.
    with pytest.raises(FileNotFoundError):
        port.missing()
    assert state_of(breaker) == "closed"
    backend.down = True
    fail_times(port, 2)  # 5 of 11 failed: still under half
    assert state_of(breaker) == "closed"
    fail_times(port, 1)  # 6 of 12: half of the window
    assert state_of(breaker) == "open"


def test_failures_leave_the_window_by_age_and_by_count(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        "records", error=RecordsUnavailable, failures=3, window_calls=6, window_s=10, clock=clock
    )
    backend = Backend()
    port = guarded(backend, breaker)
    backend.down = True
    fail_times(port, 2)
    clock.now += 10  # those two are too old to count
    fail_times(port, 2)
    assert state_of(breaker) == "closed"
    backend.down = False
    for _ in range(5):  # pushes the two failures out of the last six calls
        assert port.get("k") == "K"
    backend.down = True
    fail_times(port, 2)  # 2 in the window: not enough
    assert state_of(breaker) == "closed"
    fail_times(port, 1)  # 3 of the last 6
    assert state_of(breaker) == "open"


def test_the_default_cooldown_is_short(clock: FakeClock) -> None:
    breaker = CircuitBreaker("records", error=RecordsUnavailable, clock=clock)
    backend = Backend()
    port = guarded(backend, breaker)
    backend.down = True
    fail_times(port, 5)
    assert state_of(breaker) == "open"
    with pytest.raises(RecordsUnavailable, match="circuit open") as refused:
        port.get("k")
    assert refused.value.retry_after_s == DEFAULT_COOLDOWN_SECONDS == 2
    backend.down = False
    clock.now += DEFAULT_COOLDOWN_SECONDS
    assert port.get("k") == "K"  # the probe
    assert state_of(breaker) == "closed"


def test_half_open_probe_closes_when_the_backend_answers(
    breaker: CircuitBreaker, clock: FakeClock, opened: tuple[Backend, Backend]
) -> None:
    backend, port = opened
    clock.now += 10
    backend.down = False
    assert port.get("k") == "K"  # the probe
    assert state_of(breaker) == "closed"
    assert port.get("j") == "J"


def test_a_failed_probe_opens_for_another_cooldown(
    breaker: CircuitBreaker, clock: FakeClock, opened: tuple[Backend, Backend]
) -> None:
    backend, port = opened
    clock.now += 10
    fail_times(port, 1)  # the probe reached the backend and failed
    assert state_of(breaker) == "open"
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
    assert state_of(breaker) == "closed"


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
    assert state_of(breaker) == "closed"


def test_exempt_and_close_go_straight_through(breaker: CircuitBreaker) -> None:
    backend = Backend()
    port = guarded(backend, breaker, exempt=frozenset({"get"}))
    backend.down = True
    for _ in range(5):
        with pytest.raises(RecordsUnavailable):
            port.get("k")
    assert state_of(breaker) == "closed"  # never counted
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
    assert state_of(breaker) == "closed"


def test_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", error=RecordsUnavailable, failures=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", error=RecordsUnavailable, cooldown_s=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", error=RecordsUnavailable, failures=21, window_calls=20)
    with pytest.raises(ValueError):
        CircuitBreaker("x", error=RecordsUnavailable, failure_rate=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", error=RecordsUnavailable, window_s=0)


# -- what a slow moment and a frozen backend cost, under steady traffic ------------------------

CALLS_PER_SECOND = 50
TICK = 1 / CALLS_PER_SECOND


def replay(
    breaker: CircuitBreaker, clock: FakeClock, seconds: float, fails: Callable[[int, float], bool]
) -> Counter[str]:
    """``seconds`` of traffic, CALLS_PER_SECOND calls a second through ``breaker``; call ``n`` at
    ``t`` seconds times out when ``fails(n, t)``. Counts answered, timed out and refused calls
    (each refused one a 503 a visitor saw without its call even being tried)."""
    outcomes: Counter[str] = Counter()
    backend = Backend()
    port = guarded(backend, breaker)
    start = clock.now
    for n in range(int(seconds * CALLS_PER_SECOND)):
        t = n * TICK
        clock.now = start + t
        backend.down = fails(n, t)
        calls = backend.calls
        try:
            port.get("k")
            outcomes["answered"] += 1
        except RecordsUnavailable:
            outcomes["timed out" if backend.calls > calls else "refused"] += 1
    return outcomes


def test_a_slow_moment_costs_only_the_calls_that_timed_out(clock: FakeClock) -> None:
    """Two seconds in which one call in four times out, with one run of five in a row (moto on
    a loaded machine): this breaker never opens, and the calls that timed out are the whole
    cost. The old one (five in a row, then 10 s open) refused 10 s of everybody's calls."""

    def slow_moment(n: int, t: float) -> bool:
        return 10 <= t < 12 and (n % 4 == 0 or 10.5 <= t < 10.6)

    timed_out = sum(slow_moment(n, n * TICK) for n in range(30 * CALLS_PER_SECOND))
    breaker = CircuitBreaker("records", error=RecordsUnavailable, clock=clock)
    outcomes = replay(breaker, clock, 30, slow_moment)
    assert outcomes["refused"] == 0
    assert outcomes["timed out"] == timed_out
    assert breaker.opened == 0

    five_in_a_row = CircuitBreaker(
        "records",
        error=RecordsUnavailable,
        failures=5,
        window_calls=5,
        failure_rate=1.0,
        cooldown_s=10,
        clock=clock,
    )
    before = replay(five_in_a_row, clock, 30, slow_moment)
    assert before["refused"] >= 9 * CALLS_PER_SECOND


def test_a_frozen_backend_is_refused_fast_and_used_again_soon_after(clock: FakeClock) -> None:
    """Frozen from 10 s to 20 s: a handful of calls time out, the rest are refused at once; after
    the thaw calls are refused for at most a cool-down (and the probe), not 10 s."""
    breaker = CircuitBreaker("records", error=RecordsUnavailable, clock=clock)
    thaw = 20.0
    refused_after_thaw: list[float] = []
    first_answer_after_thaw: list[float] = []

    def frozen(n: int, t: float) -> bool:
        if t >= thaw and breaker.state != "closed":
            refused_after_thaw.append(t)
        elif t >= thaw and not first_answer_after_thaw:
            first_answer_after_thaw.append(t)
        return 10 <= t < thaw

    outcomes = replay(breaker, clock, 30, frozen)
    # Timed out: the calls that opened it (10 of the last 20) and one probe per cool-down.
    probes = int((thaw - 10) / DEFAULT_COOLDOWN_SECONDS) + 1
    assert outcomes["timed out"] <= 10 + probes
    assert outcomes["refused"] >= (thaw - 10 - 1) * CALLS_PER_SECOND - outcomes["timed out"]
    assert first_answer_after_thaw and first_answer_after_thaw[0] - thaw <= (
        DEFAULT_COOLDOWN_SECONDS + TICK
    )
    assert len(refused_after_thaw) <= DEFAULT_COOLDOWN_SECONDS * CALLS_PER_SECOND + 1


# -- a request waits on a failing backend once; a stalled one is not asked -------------------


def test_a_backend_that_failed_a_request_is_not_asked_again_in_that_request(
    breaker: CircuitBreaker,
) -> None:
    """A cache hit asks the records twice (the word lists' version check, which falls back to
    the lists it has, then the render's record): on a stalled backend each would wait its
    timeouts. Within a request, the second is refused at once and not counted; the next
    request, and anything outside requests, asks again."""
    backend = Backend()
    port = guarded(backend, breaker)
    request_begins()
    try:
        backend.down = True
        fail_times(port, 1)
        backend.down = False  # answers again: this request still does not wait on it
        with pytest.raises(RecordsUnavailable, match="failed this request") as refused:
            port.get("k")
        assert refused.value.retry_after_s == PROBE_RETRY_AFTER_SECONDS
        assert backend.calls == 1
    finally:
        request_ends()
    assert port.get("k") == "K"  # outside a request: asked
    request_begins()
    try:
        assert port.get("k") == "K"  # the next request: asked
    finally:
        request_ends()
    assert state_of(breaker) == "closed"


class Stuck:
    """A port whose ``get`` waits until released (a call a stalled backend leaves unanswered),
    then fails; ``answer`` answers at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.sent = threading.Event()

    def get(self, key: str) -> str:
        self.sent.set()
        self.release.wait(10)
        raise RecordsUnavailable("read timeout")

    def answer(self) -> str:
        return "answer"

    def call_from_another_thread(self, port: Stuck) -> threading.Thread:
        """``port.get`` (this port behind a breaker) started in a thread, once it is sent."""
        self.sent.clear()
        thread = threading.Thread(target=lambda: pytest.raises(RecordsUnavailable, port.get, "k"))
        thread.start()
        assert self.sent.wait(10)
        return thread


def test_a_remote_backend_that_leaves_a_call_unanswered_is_refused_at_once(
    clock: FakeClock,
) -> None:
    """While a call has waited a read timeout with nothing answered since it was sent, new
    calls are refused at once, not counted: the requests of a burst queued for a thread are not
    sent to wait out timeouts of their own once the first ones fail. An answer after a call was
    sent means a slow call, not a stall; once the stuck calls return, the next call is sent."""
    breaker = CircuitBreaker("records", error=RecordsUnavailable, stall_s=0.6, clock=clock)
    stuck = Stuck()
    port = guarded(stuck, breaker)
    waiting = stuck.call_from_another_thread(port)
    try:
        clock.now += 0.5
        assert port.answer() == "answer"  # within a read timeout: sent (and it answers)
        clock.now += 0.2  # 0.7 s since the stuck call, but an answer came after it was sent
        assert port.answer() == "answer"
        second = stuck.call_from_another_thread(port)
        clock.now += 0.6  # a call unanswered for a read timeout, nothing answered since
        with pytest.raises(RecordsUnavailable, match="stalled") as refused:
            port.answer()
        assert refused.value.retry_after_s == PROBE_RETRY_AFTER_SECONDS
        assert state_of(breaker) == "closed"  # refusals are not failures
    finally:
        stuck.release.set()
        waiting.join(10)
    second.join(10)
    assert port.answer() == "answer"  # nothing in flight: sent again


def test_a_local_backend_is_never_stalled(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """SQLite waiting for its write lock, a disk: busy, not stalled (no ``stall_s``)."""
    stuck = Stuck()
    port = guarded(stuck, breaker)
    waiting = stuck.call_from_another_thread(port)
    try:
        clock.now += 5
        assert port.answer() == "answer"
    finally:
        stuck.release.set()
        waiting.join(10)


def answered_beside_a_long_call(
    breaker: CircuitBreaker, clock: FakeClock, stuck: Stuck, **options: frozenset[str]
) -> str:
    """Another call's answer once ``stuck.get`` (guarded with ``options``) has waited 5 s."""
    waiting = stuck.call_from_another_thread(guarded(stuck, breaker, **options))
    try:
        clock.now += 5
        return guarded(stuck, breaker).answer()
    finally:
        stuck.release.set()
        waiting.join(10)


def test_a_render_finishing_on_a_patient_client_is_no_stall(clock: FakeClock) -> None:
    """The calls only counted (a render's "done" and its media, on the patient write client)
    may wait longer than a read timeout: that alone refuses nobody."""
    breaker = CircuitBreaker("records", error=RecordsUnavailable, stall_s=0.6, clock=clock)
    stuck = Stuck()
    assert answered_beside_a_long_call(breaker, clock, stuck, always=frozenset({"get"})) == (
        "answer"
    )


def test_a_long_call_of_a_patient_method_is_no_stall_but_is_refused_while_open(
    clock: FakeClock,
) -> None:
    """A file streamed from S3 or a listing read page by page may rightly take longer than a
    read timeout: it refuses nobody else's calls (review: a 120 MB upload's download gave every
    other visitor 503 for its length). It is still refused while the breaker is open."""
    breaker = CircuitBreaker(
        "storage", error=RecordsUnavailable, failures=1, stall_s=0.6, clock=clock
    )
    stuck = Stuck()
    patient = frozenset({"get"})
    assert answered_beside_a_long_call(breaker, clock, stuck, patient=patient) == "answer"
    assert state_of(breaker) == "open"  # its failure counted: with failures=1, open
    with pytest.raises(RecordsUnavailable, match="circuit open"):
        guarded(stuck, breaker, patient=patient).get("k")


def test_the_site_names_its_long_port_methods_patient() -> None:
    from loopmark.composition import RECORDS_PATIENT, STORAGE_PATIENT
    from loopmark.records.renders import RenderRecords
    from loopmark.storage.base import BlobStore

    assert RECORDS_PATIENT <= set(dir(RenderRecords))  # a renamed method is no silent miss
    assert STORAGE_PATIENT <= set(dir(BlobStore))
