"""LocalDispatcher: the concurrency and queue bounds, positions, progress, ETAs, failures, close."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from loopmark.config import Settings
from loopmark.dispatch import LocalDispatcher, RenderJob, open_dispatcher
from loopmark.dispatch.aws_lambda import LambdaDispatcher
from loopmark.dispatch.base import ProgressReport
from loopmark.dispatch.local import (
    MIN_REMAINING_SECONDS,
    QUEUE_FULL_RETRY_MAX_SECONDS,
    SHUTDOWN_RETRY_AFTER_SECONDS,
)
from loopmark.errors import (
    CaptionRejected,
    ConfigInvalid,
    DispatchUnavailable,
    QueueFull,
    ToolFailed,
)

WAIT_SECONDS = 20.0


def job(n: int | str, template: str = "bunny") -> RenderJob:
    return RenderJob(key=f"key-{n}", template_id=template, caption=f"caption {n}")


class FakeClock:
    """The clock ETAs read, moved by hand: schedule arithmetic needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class HeldRunner:
    """A runner whose jobs block until the test releases them (one key, or all)."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    released: set[str] = field(default_factory=set)
    release_all: bool = False
    running: int = 0
    max_running: int = 0
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)

    def __call__(self, job: RenderJob, report: ProgressReport) -> None:
        with self.cond:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.started.append(job.key)
            self.cond.notify_all()
            ok = self.cond.wait_for(
                lambda: self.release_all or job.key in self.released, WAIT_SECONDS
            )
            self.running -= 1
            self.finished.append(job.key)
        assert ok, f"{job.key} was never released"

    def wait_started(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.started) >= count, WAIT_SECONDS)

    def release(self, key: str | None = None) -> None:
        with self.cond:
            if key is None:
                self.release_all = True
            else:
                self.released.add(key)
            self.cond.notify_all()


@pytest.fixture
def held() -> Iterator[HeldRunner]:
    runner = HeldRunner()
    yield runner
    runner.release()


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("loopmark-render-")]


# -- choosing and starting ----------------------------------------------------------------------


def test_open_dispatcher_takes_the_configured_concurrency_and_starts_nothing(
    held: HeldRunner,
) -> None:
    settings = Settings.from_env({"LOOPMARK_RENDER_CONCURRENCY": "3"})
    before = len(_workers())
    dispatcher = open_dispatcher("local", held, concurrency=settings.render_concurrency)
    try:
        assert isinstance(dispatcher, LocalDispatcher)
        assert dispatcher.concurrency == 3
        assert dispatcher.max_queue == 200
        assert len(_workers()) == before
        dispatcher.submit(job(1))
        assert len(_workers()) == before + 3
    finally:
        held.release()
        dispatcher.close()
    assert len(_workers()) == before


def test_open_dispatcher_defaults_to_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever the environment says: settings are read by loopmark.config alone.
    monkeypatch.setenv("LOOPMARK_RENDER_CONCURRENCY", "977")
    dispatcher = open_dispatcher("local", lambda j, r: None)
    assert isinstance(dispatcher, LocalDispatcher)
    assert 1 <= dispatcher.concurrency != 977


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_bad_concurrency_setting_is_config_invalid(value: str) -> None:
    with pytest.raises(ConfigInvalid, match="LOOPMARK_RENDER_CONCURRENCY"):
        Settings.from_env({"LOOPMARK_RENDER_CONCURRENCY": value})


@pytest.mark.parametrize(
    "url", ["", "locale", "sqs://queue", "lambda://", "lambda://has space", "lambda://a/b"]
)
def test_unknown_dispatch_urls_are_config_invalid(url: str) -> None:
    with pytest.raises(ConfigInvalid):
        open_dispatcher(url, lambda j, r: None)


@pytest.mark.parametrize(
    "url",
    [
        "lambda://loopmark-render",
        "lambda://loopmark_render:live",
        "lambda://arn:aws:lambda:eu-west-1:123456789012:function:loopmark-render",
    ],
)
def test_lambda_urls_open_a_lambda_dispatcher_without_network(url: str) -> None:
    dispatcher = open_dispatcher(url, lambda j, r: None)
    assert isinstance(dispatcher, LambdaDispatcher)
    assert dispatcher.function_name == url.removeprefix("lambda://")
    assert dispatcher._client is None


# -- running -------------------------------------------------------------------------------------


def test_fifty_threads_submitting_one_key_run_it_once(held: HeldRunner) -> None:
    dispatcher = LocalDispatcher(held, concurrency=4)
    try:
        with ThreadPoolExecutor(50) as pool:
            states = list(pool.map(lambda _: dispatcher.submit(job("same")), range(50)))
        assert {s.key for s in states} == {"key-same"}
        assert {s.state for s in states} <= {"queued", "rendering"}
        held.release()
        final = dispatcher.wait("key-same", WAIT_SECONDS)
        assert final is not None and final.state == "done"
        assert held.started == ["key-same"]
    finally:
        held.release()
        dispatcher.close()


def test_concurrency_bound_and_queue_positions(held: HeldRunner) -> None:
    dispatcher = LocalDispatcher(held, concurrency=3)
    try:
        for n in range(8):
            dispatcher.submit(job(n))
        held.wait_started(3)
        states = [dispatcher.state(f"key-{n}") for n in range(8)]
        assert [s.state for s in states if s] == ["rendering"] * 3 + ["queued"] * 5
        assert [s.position for s in states if s] == [0, 0, 0, 1, 2, 3, 4, 5]
        assert dispatcher.queue_depth() == 5
        assert held.running == 3
        held.release()
        for n in range(8):
            final = dispatcher.wait(f"key-{n}", WAIT_SECONDS)
            assert final is not None and final.state == "done"
        assert held.max_running == 3
        assert sorted(held.finished) == sorted(f"key-{n}" for n in range(8))
        assert dispatcher.queue_depth() == 0
    finally:
        held.release()
        dispatcher.close()


def test_positions_decrease_as_work_completes(held: HeldRunner) -> None:
    dispatcher = LocalDispatcher(held, concurrency=1)
    try:
        dispatcher.submit(job(0))
        held.wait_started(1)
        for n in range(1, 4):
            dispatcher.submit(job(n))
        before = [dispatcher.state(f"key-{n}") for n in range(1, 4)]
        assert [s.position for s in before if s] == [1, 2, 3]
        held.release("key-0")
        assert dispatcher.wait("key-0", WAIT_SECONDS).state == "done"  # type: ignore[union-attr]
        held.wait_started(2)
        after = [dispatcher.state(f"key-{n}") for n in range(1, 4)]
        assert [(s.state, s.position) for s in after if s] == [
            ("rendering", 0),
            ("queued", 1),
            ("queued", 2),
        ]
    finally:
        held.release()
        dispatcher.close()


def test_queue_bound_raises_queue_full_with_retry_after(held: HeldRunner) -> None:
    dispatcher = LocalDispatcher(held, concurrency=1, max_queue=2)
    try:
        dispatcher.submit(job(0))
        held.wait_started(1)
        dispatcher.submit(job(1))
        dispatcher.submit(job(2))
        with pytest.raises(QueueFull) as caught:
            dispatcher.submit(job(3))
        assert caught.value.code == "queue_full"
        assert isinstance(caught.value.retry_after_s, int)
        assert caught.value.retry_after_s >= 1
        # A job already queued is not refused: the caller gets its state.
        again = dispatcher.submit(job(2))
        assert (again.state, again.position) == ("queued", 2)
        assert dispatcher.state("key-3") is None
        held.release()
        assert dispatcher.wait("key-2", WAIT_SECONDS).state == "done"  # type: ignore[union-attr]
        dispatcher.submit(job(3))
        assert dispatcher.wait("key-3", WAIT_SECONDS).state == "done"  # type: ignore[union-attr]
    finally:
        held.release()
        dispatcher.close()


def test_a_finished_key_submitted_again_runs_again() -> None:
    runs: list[str] = []
    dispatcher = LocalDispatcher(lambda j, r: runs.append(j.key), concurrency=1)
    try:
        for _ in range(2):
            dispatcher.submit(job(1))
            assert dispatcher.wait("key-1", WAIT_SECONDS).state == "done"  # type: ignore[union-attr]
        assert runs == ["key-1", "key-1"]
    finally:
        dispatcher.close()


def test_progress_is_clamped_and_monotonic() -> None:
    seen: list[float] = []
    dispatcher: LocalDispatcher

    def runner(job: RenderJob, report: ProgressReport) -> None:
        for value in (0.1, 0.5, 0.3, float("nan"), 1.7, -1.0):
            report(value)
            state = dispatcher.state(job.key)
            assert state is not None and state.state == "rendering"
            seen.append(state.progress)

    dispatcher = LocalDispatcher(runner, concurrency=1)
    try:
        dispatcher.submit(job(1))
        final = dispatcher.wait("key-1", WAIT_SECONDS)
        assert seen == [0.1, 0.5, 0.5, 0.5, 1.0, 1.0]
        assert final is not None
        assert (final.state, final.progress, final.eta_seconds) == ("done", 1.0, 0.0)
    finally:
        dispatcher.close()


def test_late_progress_reports_after_finishing_are_ignored() -> None:
    reports: list[ProgressReport] = []
    dispatcher = LocalDispatcher(lambda j, report: reports.append(report), concurrency=1)
    try:
        dispatcher.submit(job(1))
        dispatcher.wait("key-1", WAIT_SECONDS)
        reports[0](0.3)
        state = dispatcher.state("key-1")
        assert state is not None and (state.state, state.progress) == ("done", 1.0)
    finally:
        dispatcher.close()


# -- failures ------------------------------------------------------------------------------------


def test_a_domain_error_fails_the_job_and_is_kept() -> None:
    error = CaptionRejected("nope", code="caption_profanity")

    def runner(job: RenderJob, report: ProgressReport) -> None:
        report(0.4)
        raise error

    dispatcher = LocalDispatcher(runner, concurrency=1)
    try:
        dispatcher.submit(job(1))
        state = dispatcher.wait("key-1", WAIT_SECONDS)
        assert state is not None
        assert (state.state, state.progress, state.eta_seconds) == ("failed", 0.4, None)
        assert state.error is error
    finally:
        dispatcher.close()


def test_a_crash_fails_the_job_generically_and_the_worker_lives_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def runner(job: RenderJob, report: ProgressReport) -> None:
        if job.key == "key-crash":
            raise ZeroDivisionError("secret internals")

    dispatcher = LocalDispatcher(runner, concurrency=1)
    try:
        with caplog.at_level(logging.ERROR, logger="loopmark.dispatch.local"):
            dispatcher.submit(job("crash"))
            state = dispatcher.wait("key-crash", WAIT_SECONDS)
        assert state is not None and state.state == "failed"
        assert type(state.error) is ToolFailed  # a 503 upstream: try again, not a 500
        assert state.error.reason == "the render failed; please try again"
        assert "secret" not in state.error.reason
        assert "ZeroDivisionError" in caplog.text
        dispatcher.submit(job("next"))
        assert dispatcher.wait("key-next", WAIT_SECONDS).state == "done"  # type: ignore[union-attr]
        dispatcher.check()
    finally:
        dispatcher.close()


def test_wait_returns_on_completion_and_times_out(held: HeldRunner) -> None:
    dispatcher = LocalDispatcher(held, concurrency=1)
    try:
        dispatcher.submit(job(1))
        dispatcher.submit(job(2))
        held.wait_started(1)
        timed_out = dispatcher.wait("key-2", 0.05)
        assert timed_out is not None and timed_out.state == "queued"
        assert dispatcher.wait("key-1", 0).state == "rendering"  # type: ignore[union-attr]

        result: list[object] = []
        waiter = threading.Thread(target=lambda: result.append(dispatcher.wait("key-2", 30)))
        waiter.start()
        held.release()
        waiter.join(WAIT_SECONDS)
        assert not waiter.is_alive()
        assert result[0].state == "done"  # type: ignore[attr-defined]
    finally:
        held.release()
        dispatcher.close()


def test_finished_states_are_kept_for_the_last_keys_only() -> None:
    dispatcher = LocalDispatcher(lambda j, r: None, concurrency=1, finished_keep_keys=3)
    try:
        for n in range(5):
            dispatcher.submit(job(n))
            dispatcher.wait(f"key-{n}", WAIT_SECONDS)
        assert [dispatcher.state(f"key-{n}") is not None for n in range(5)] == [
            False,
            False,
            True,
            True,
            True,
        ]
    finally:
        dispatcher.close()


def test_close_fails_queued_jobs_and_refuses_new_ones(held: HeldRunner) -> None:
    before = len(_workers())
    dispatcher = LocalDispatcher(held, concurrency=1)
    dispatcher.submit(job(1))
    dispatcher.submit(job(2))
    held.wait_started(1)
    closer = threading.Thread(target=dispatcher.close)
    closer.start()
    # close() fails the queued job at once, then waits for the running one to finish.
    queued = dispatcher.wait("key-2", WAIT_SECONDS)
    assert queued is not None and queued.state == "failed"
    assert isinstance(queued.error, DispatchUnavailable)
    with pytest.raises(DispatchUnavailable):
        dispatcher.submit(job(3))
    with pytest.raises(DispatchUnavailable):
        dispatcher.check()
    held.release()
    closer.join(WAIT_SECONDS)
    assert not closer.is_alive()
    assert dispatcher.state("key-1").state == "done"  # type: ignore[union-attr]
    assert held.started == ["key-1"]
    assert len(_workers()) == before


# -- estimates -----------------------------------------------------------------------------------


def test_eta_schedule_with_a_fake_clock(held: HeldRunner) -> None:
    clock = FakeClock()
    dispatcher = LocalDispatcher(held, concurrency=1, clock=clock, default_estimate_s=2.0)
    try:
        dispatcher.submit(job(0))
        held.wait_started(1)
        for n in range(1, 4):
            dispatcher.submit(job(n))
        etas = [dispatcher.state(f"key-{n}").eta_seconds for n in range(4)]  # type: ignore[union-attr]
        assert etas == [2.0, 4.0, 6.0, 8.0]
        clock.now += 1.5
        etas = [dispatcher.state(f"key-{n}").eta_seconds for n in range(4)]  # type: ignore[union-attr]
        assert etas == [0.5, 2.5, 4.5, 6.5]
        # Past its estimate a running job is "almost done", never negative.
        clock.now += 10
        assert dispatcher.state("key-0").eta_seconds == MIN_REMAINING_SECONDS  # type: ignore[union-attr]
    finally:
        held.release()
        dispatcher.close()


def test_eta_of_queued_jobs_simulates_every_worker(held: HeldRunner) -> None:
    clock = FakeClock()
    dispatcher = LocalDispatcher(held, concurrency=2, clock=clock, default_estimate_s=2.0)
    try:
        dispatcher.submit(job(0))
        held.wait_started(1)
        clock.now += 1.0  # job 0 has 1 s left; the second worker is idle
        for n in range(1, 5):
            dispatcher.submit(job(n))
        held.wait_started(2)
        etas = [dispatcher.state(f"key-{n}").eta_seconds for n in range(5)]  # type: ignore[union-attr]
        # Workers free at 1 (job 0) and 2 (job 1): job 2 → 1+2, job 3 → 2+2, job 4 → 3+2.
        assert etas == [1.0, 2.0, 3.0, 4.0, 5.0]
        assert etas[2:] == sorted(etas[2:])
    finally:
        held.release()
        dispatcher.close()


def test_eta_from_progress_rate_once_past_a_fifth() -> None:
    clock = FakeClock()
    step = threading.Event()
    go_on = threading.Event()

    def runner(job: RenderJob, report: ProgressReport) -> None:
        clock.now += 3.0
        report(0.6)  # 3 s for 60 %: 2 s left, whatever the estimate says
        step.set()
        assert go_on.wait(WAIT_SECONDS)

    dispatcher = LocalDispatcher(runner, concurrency=1, clock=clock, default_estimate_s=10.0)
    try:
        dispatcher.submit(job(1))
        assert step.wait(WAIT_SECONDS)
        state = dispatcher.state("key-1")
        assert state is not None and state.progress == 0.6
        assert state.eta_seconds == pytest.approx(2.0)
    finally:
        go_on.set()
        dispatcher.close()


def test_estimates_are_measured_per_template() -> None:
    clock = FakeClock()
    seconds = {"key-a1": 3.0, "key-a2": 1.0, "key-b1": 5.0}

    def runner(job: RenderJob, report: ProgressReport) -> None:
        clock.now += seconds[job.key]

    dispatcher = LocalDispatcher(runner, concurrency=1, clock=clock, default_estimate_s=1.0)
    try:
        assert dispatcher.estimate_seconds("a") == 1.0
        for key, template in (("a1", "a"), ("a2", "a"), ("b1", "b")):
            dispatcher.submit(job(key, template))
            dispatcher.wait(f"key-{key}", WAIT_SECONDS)
        # The first measurement replaces the seed; later ones move the mean 30 % of the way.
        assert dispatcher.estimate_seconds("a") == pytest.approx(0.7 * 3.0 + 0.3 * 1.0)
        assert dispatcher.estimate_seconds("b") == pytest.approx(5.0)
        # A template never rendered here is expected to cost what the others cost.
        assert dispatcher.estimate_seconds("c") == pytest.approx((2.4 + 5.0) / 2)
    finally:
        dispatcher.close()


def test_renders_beside_others_are_measured_apart_and_used_for_the_queue() -> None:
    clock = FakeClock()
    both_running = threading.Barrier(2, timeout=WAIT_SECONDS)

    def runner(job: RenderJob, report: ProgressReport) -> None:
        if job.key in ("key-solo", "key-b1"):
            clock.now += 2.0 if job.key == "key-solo" else 1.0
            return
        both_running.wait()  # the two "pair" jobs overlap for real
        if job.key == "key-pair1":
            clock.now += 3.0

    dispatcher = LocalDispatcher(runner, concurrency=2, clock=clock, default_estimate_s=1.0)
    try:
        dispatcher.submit(job("solo", "a"))
        dispatcher.wait("key-solo", WAIT_SECONDS)
        assert dispatcher.estimate_seconds("a") == 2.0
        # Until a busy time is measured, the alone time stands in for it.
        assert dispatcher.estimate_seconds("a", busy=True) == 2.0
        dispatcher.submit(job("pair1", "a"))
        dispatcher.submit(job("pair2", "a"))
        dispatcher.wait("key-pair1", WAIT_SECONDS)
        dispatcher.wait("key-pair2", WAIT_SECONDS)
        assert dispatcher.estimate_seconds("a") == 2.0  # alone times are untouched
        busy = dispatcher.estimate_seconds("a", busy=True)
        assert busy != 2.0
        # Another template alone for 1 s: beside others it is expected to slow down alike.
        dispatcher.submit(job("b1", "b"))
        dispatcher.wait("key-b1", WAIT_SECONDS)
        assert dispatcher.estimate_seconds("b") == 1.0
        assert dispatcher.estimate_seconds("b", busy=True) == pytest.approx(busy / 2.0)
    finally:
        dispatcher.close()


def test_failed_renders_do_not_count_as_measurements() -> None:
    clock = FakeClock()

    def runner(job: RenderJob, report: ProgressReport) -> None:
        clock.now += 0.01
        raise CaptionRejected("no")

    dispatcher = LocalDispatcher(runner, concurrency=1, clock=clock, default_estimate_s=2.0)
    try:
        dispatcher.submit(job(1))
        dispatcher.wait("key-1", WAIT_SECONDS)
        assert dispatcher.estimate_seconds("bunny") == 2.0
    finally:
        dispatcher.close()


def test_queue_full_retry_after_comes_from_the_schedule(held: HeldRunner) -> None:
    clock = FakeClock()
    dispatcher = LocalDispatcher(
        held, concurrency=1, max_queue=1, clock=clock, default_estimate_s=7.5
    )
    try:
        dispatcher.submit(job(0))
        held.wait_started(1)
        dispatcher.submit(job(1))
        with pytest.raises(QueueFull) as caught:
            dispatcher.submit(job(2))
        assert caught.value.retry_after_s == 8  # the head of the queue starts in 7.5 s
        clock.now += 30
        with pytest.raises(QueueFull) as caught:
            dispatcher.submit(job(2))
        assert caught.value.retry_after_s == 1
    finally:
        held.release()
        dispatcher.close()


def test_queue_full_retry_after_is_the_time_to_drain_the_whole_queue(held: HeldRunner) -> None:
    """Issue 10: a full queue said "Retry-After: 1" while it took minutes to drain. Six queued
    jobs behind two workers at 10 s each drain in 30 s, and that is what the visitor is told."""
    clock = FakeClock()
    dispatcher = LocalDispatcher(
        held, concurrency=2, max_queue=6, clock=clock, default_estimate_s=10.0
    )
    try:
        dispatcher.submit(job(0))
        dispatcher.submit(job(1))
        held.wait_started(2)
        for n in range(2, 8):
            dispatcher.submit(job(n))
        with pytest.raises(QueueFull) as caught:
            dispatcher.submit(job(99))
        assert caught.value.retry_after_s == 30
        clock.now += 4  # the running pair is 4 s in: the queue drains 4 s sooner
        with pytest.raises(QueueFull) as caught:
            dispatcher.submit(job(99))
        assert caught.value.retry_after_s == 26
    finally:
        held.release()
        dispatcher.close()


def test_queue_full_retry_after_is_bounded(held: HeldRunner) -> None:
    dispatcher = LocalDispatcher(held, concurrency=1, max_queue=3, default_estimate_s=900.0)
    try:
        dispatcher.submit(job(0))
        held.wait_started(1)
        for n in range(1, 4):
            dispatcher.submit(job(n))
        with pytest.raises(QueueFull) as caught:
            dispatcher.submit(job(99))
        assert caught.value.retry_after_s == QUEUE_FULL_RETRY_MAX_SECONDS
    finally:
        held.release()
        dispatcher.close()


def test_close_gives_running_renders_a_bounded_grace_and_says_when_to_come_back(
    held: HeldRunner,
) -> None:
    dispatcher = LocalDispatcher(held, concurrency=1)
    dispatcher.submit(job(1))
    dispatcher.submit(job(2))
    held.wait_started(1)
    started = time.monotonic()
    dispatcher.close(grace_s=0.3)  # key-1 is never released in time
    assert time.monotonic() - started < WAIT_SECONDS
    assert dispatcher.state("key-1").state == "rendering"  # type: ignore[union-attr]
    with pytest.raises(DispatchUnavailable) as caught:
        dispatcher.submit(job(3))
    assert caught.value.retry_after_s == SHUTDOWN_RETRY_AFTER_SECONDS
    dropped = dispatcher.state("key-2")
    assert dropped is not None and dropped.state == "failed"
    held.release()
    assert dispatcher.wait("key-1", WAIT_SECONDS).state == "done"  # type: ignore[union-attr]
    assert held.started == ["key-1"]


def test_queued_eta_lands_within_a_quarter_of_the_real_wait() -> None:
    """A correctness check of the estimator with real sleeps, not a timing test: the bound is
    asserted on the median of many jobs, and the sleeps dwarf the machine's scheduling noise."""
    sleep_s = {"short": 0.2, "long": 0.4}
    finished_at: dict[str, float] = {}

    def runner(job: RenderJob, report: ProgressReport) -> None:
        time.sleep(sleep_s[job.template_id])
        finished_at[job.key] = time.monotonic()

    dispatcher = LocalDispatcher(runner, concurrency=2)
    try:
        # One render of each template measures it (the seed of 1 s would be wrong for both).
        for template in sleep_s:
            dispatcher.submit(job(f"warm-{template}", template))
        for template in sleep_s:
            dispatcher.wait(f"key-warm-{template}", WAIT_SECONDS)

        predicted: dict[str, tuple[float, float]] = {}
        templates = ["short", "long", "long", "short", "short", "long", "short", "long"]
        for n, template in enumerate(templates):
            state = dispatcher.submit(job(n, template))
            assert state.eta_seconds is not None
            predicted[state.key] = (time.monotonic(), state.eta_seconds)
        for key in predicted:
            dispatcher.wait(key, WAIT_SECONDS)

        errors = []
        for key, (submitted, eta) in predicted.items():
            real = finished_at[key] - submitted
            errors.append(abs(eta - real) / real)
        assert statistics.median(errors) <= 0.25, errors
        # Later places in the queue were promised later finishes.
        etas = [eta for _, eta in predicted.values()]
        assert etas[-1] > etas[0]
    finally:
        dispatcher.close()
