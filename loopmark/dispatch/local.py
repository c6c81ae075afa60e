"""LocalDispatcher: the embedded render pool: N worker threads, a bounded FIFO queue, ETAs.

At most ``concurrency`` renders run at once in the whole process; up to ``max_queue`` more wait
in order; past that, submit raises QueueFull with a Retry-After taken from the same schedule the
ETAs come from: how long the workers take to drain the queue (QUEUE_FULL_RETRY_MAX_SECONDS at
most). ETAs are measured, not guessed: each template keeps an exponentially weighted mean of its
real render seconds, and a queued job's ETA simulates the workers draining the jobs ahead of it.

Closing is graceful: no job is taken any more (DispatchUnavailable, with a Retry-After of
SHUTDOWN_RETRY_AFTER_SECONDS), queued jobs are dropped (their render records keep them queued for
the next start) and running renders get up to ``grace_s`` to finish.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from loopmark.dispatch.base import (
    DONE,
    FAILED,
    QUEUED,
    RENDERING,
    JobRunner,
    JobState,
    RenderJob,
    clamp_fraction,
    retry_after_seconds,
)
from loopmark.errors import N_, DispatchUnavailable, LoopmarkError, QueueFull, ToolFailed

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUE = 200
# Finished jobs are remembered so state() and wait() still answer after completion; beyond this
# many keys the least recently used are forgotten (the render records keep the truth).
FINISHED_KEEP_KEYS = 2000
# A template's render seconds before its first measurement.
DEFAULT_ESTIMATE_SECONDS = 1.0
# Weight of the newest measurement in a template's running mean: recent renders dominate (the
# machine's load changes), yet one slow outlier moves the estimate only part of the way.
ESTIMATE_WEIGHT = 0.3
# Below this progress, rate-based extrapolation is noise (set-up costs dominate the first frames).
PROGRESS_RATE_FROM = 0.2
# A running job's remaining time never reads as zero or negative: it is still running.
MIN_REMAINING_SECONDS = 0.05
# How long close() waits, by default, for the running renders to finish (all of them together).
CLOSE_JOIN_SECONDS = 5.0
# A full queue's Retry-After is the time its workers take to drain it, bounded: a visitor told to
# come back in an hour has gone.
QUEUE_FULL_RETRY_MAX_SECONDS = 300
# Retry-After while the pool is shutting down: a restarted server answers in a few seconds.
SHUTDOWN_RETRY_AFTER_SECONDS = 5

Clock = Callable[[], float]


@dataclass(eq=False)
class _Entry:
    """A job this dispatcher is holding (queued or running); mutated only under the lock."""

    job: RenderJob
    status: str = QUEUED
    progress: float = 0.0
    started_at: float | None = None
    shared: bool = False  # another job ran beside it at some point: its time is a "busy" time


class LocalDispatcher:
    """Runs jobs on a pool of worker threads started on first submit (none before)."""

    def __init__(
        self,
        runner: JobRunner,
        *,
        concurrency: int,
        max_queue: int = DEFAULT_MAX_QUEUE,
        clock: Clock = time.monotonic,
        default_estimate_s: float = DEFAULT_ESTIMATE_SECONDS,
        finished_keep_keys: int = FINISHED_KEEP_KEYS,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_queue < 0:
            raise ValueError(f"max_queue must not be negative, got {max_queue}")
        self.concurrency = concurrency
        self.max_queue = max_queue
        self._runner = runner
        self._clock = clock
        self._default_estimate_s = default_estimate_s
        self._finished_keep = finished_keep_keys
        # One lock guards all state; workers wait for work and callers wait for finished jobs on
        # separate conditions, so waking a worker never wakes (only) a waiting caller instead.
        self._lock = threading.Lock()
        self._work_ready = threading.Condition(self._lock)
        self._job_finished = threading.Condition(self._lock)
        self._queue: deque[_Entry] = deque()
        self._active: dict[str, _Entry] = {}
        self._finished: OrderedDict[str, JobState] = OrderedDict()
        # Render seconds per template when a job runs alone, and when it shares the machine
        # with other renders (they compete for cores and the interpreter: measured 0.58 s alone
        # against 0.75 s two at a time). A full queue runs busy, so queued jobs use busy times.
        self._estimates: dict[str, float] = {}
        self._busy_estimates: dict[str, float] = {}
        self._busy_ratio: float | None = None  # busy time / alone time, over every template
        self._workers: list[threading.Thread] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"LocalDispatcher(concurrency={self.concurrency}, max_queue={self.max_queue})"

    # -- the port ----------------------------------------------------------------------------

    def submit(self, job: RenderJob) -> JobState:
        with self._lock:
            if self._closed:
                raise self._shut_down_error()
            now = self._clock()
            existing = self._active.get(job.key)
            if existing is not None:
                return self._entry_state_locked(existing, now)
            if len(self._queue) >= self.max_queue:
                raise QueueFull(
                    N_("Too many renders are waiting; please try again shortly."),
                    retry_after_s=self._drain_retry_after_locked(now),
                )
            entry = _Entry(job)
            self._active[job.key] = entry
            self._queue.append(entry)
            self._finished.pop(job.key, None)
            self._start_workers_locked()
            self._work_ready.notify()
            return self._entry_state_locked(entry, now)

    def state(self, key: str) -> JobState | None:
        with self._lock:
            return self._state_locked(key, self._clock())

    def wait(self, key: str, timeout_s: float) -> JobState | None:
        # Condition.wait counts real seconds, whatever clock the ETAs use.
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._lock:
            while key in self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._job_finished.wait(remaining)
            return self._state_locked(key, self._clock())

    def queue_depth(self) -> int:
        with self._lock:
            return len(self._queue)

    def check(self) -> None:
        with self._lock:
            if self._closed:
                raise self._shut_down_error()
            dead = sum(1 for worker in self._workers if not worker.is_alive())
        if dead:
            raise DispatchUnavailable(f"{dead} of {self.concurrency} render workers died")

    def close(self, *, grace_s: float = CLOSE_JOIN_SECONDS) -> None:
        """Take no more jobs, drop the queued ones, and give the running renders up to
        ``grace_s`` (together) to finish; those still running then are left to their threads
        (daemons), whose render service hands them back. Safe to call twice."""
        deadline = time.monotonic() + max(0.0, grace_s)
        with self._lock:
            self._closed = True
            shut = DispatchUnavailable(
                "the render pool shut down before this render started",
                retry_after_s=SHUTDOWN_RETRY_AFTER_SECONDS,
            )
            while self._queue:
                entry = self._queue.popleft()
                self._finish_locked(entry, shut)
            self._work_ready.notify_all()
            while self._active and (remaining := deadline - time.monotonic()) > 0:
                self._job_finished.wait(remaining)
            workers = list(self._workers)
        for worker in workers:
            if worker is not threading.current_thread():
                worker.join(max(0.0, deadline - time.monotonic()))

    @staticmethod
    def _shut_down_error() -> DispatchUnavailable:
        return DispatchUnavailable(
            "The server is restarting; please try again in a few seconds.",
            retry_after_s=SHUTDOWN_RETRY_AFTER_SECONDS,
        )

    def _drain_retry_after_locked(self, now: float) -> int:
        """Seconds until the workers have started every queued job (queue length × measured
        render time ÷ workers, with the running renders' remaining time), bounded."""
        schedule = self._schedule_locked(now)
        drain_s = schedule[-1][0] if schedule else self._default_estimate_s
        return min(QUEUE_FULL_RETRY_MAX_SECONDS, retry_after_seconds(drain_s))

    # -- estimates ---------------------------------------------------------------------------

    def estimate_seconds(self, template_id: str, *, busy: bool = False) -> float:
        """The expected render seconds of one job of ``template_id``, alone or beside others."""
        with self._lock:
            return self._estimate_locked(template_id, busy=busy)

    def _estimate_locked(self, template_id: str, *, busy: bool = False) -> float:
        if busy:
            known = self._busy_estimates.get(template_id)
            if known is not None:
                return known
            if self._busy_ratio is not None:
                return self._busy_ratio * self._estimate_locked(template_id)
            if template_id not in self._estimates and self._busy_estimates:
                return sum(self._busy_estimates.values()) / len(self._busy_estimates)
        known = self._estimates.get(template_id)
        if known is not None:
            return known
        if self._estimates:
            # A template not rendered yet most likely costs what the others cost on this machine.
            return sum(self._estimates.values()) / len(self._estimates)
        if self._busy_estimates:
            return sum(self._busy_estimates.values()) / len(self._busy_estimates)
        return self._default_estimate_s

    def _measure_locked(self, template_id: str, seconds: float, *, shared: bool) -> None:
        table = self._busy_estimates if shared else self._estimates
        table[template_id] = _blend(table.get(template_id), seconds)
        alone = self._estimates.get(template_id)
        if shared and alone:
            self._busy_ratio = _blend(self._busy_ratio, seconds / alone)

    def _running_count_locked(self) -> int:
        return sum(1 for entry in self._active.values() if entry.status == RENDERING)

    def _remaining_locked(self, entry: _Entry, now: float) -> float:
        """Seconds a running job still needs."""
        elapsed = max(0.0, now - (entry.started_at if entry.started_at is not None else now))
        if entry.progress > PROGRESS_RATE_FROM:
            remaining = elapsed * (1.0 - entry.progress) / entry.progress
        else:
            busy = self._running_count_locked() > 1
            remaining = self._estimate_locked(entry.job.template_id, busy=busy) - elapsed
        return max(MIN_REMAINING_SECONDS, remaining)

    def _schedule_locked(self, now: float) -> list[tuple[float, float]]:
        """(start, finish) in seconds from now for each queued job, in queue order: the running
        jobs finish, then each queued job takes the earliest free worker."""
        free = [
            self._remaining_locked(entry, now)
            for entry in self._active.values()
            if entry.status == RENDERING
        ]
        free.extend([0.0] * max(0, self.concurrency - len(free)))
        heapq.heapify(free)
        schedule: list[tuple[float, float]] = []
        # With a queue, every worker stays busy until it drains: queued jobs run beside others.
        busy = self.concurrency > 1
        for entry in self._queue:
            start = heapq.heappop(free)
            finish = start + self._estimate_locked(entry.job.template_id, busy=busy)
            heapq.heappush(free, finish)
            schedule.append((start, finish))
        return schedule

    # -- states ------------------------------------------------------------------------------

    def _state_locked(self, key: str, now: float) -> JobState | None:
        entry = self._active.get(key)
        if entry is None:
            finished = self._finished.get(key)
            if finished is not None:
                self._finished.move_to_end(key)
            return finished
        return self._entry_state_locked(entry, now)

    def _entry_state_locked(self, entry: _Entry, now: float) -> JobState:
        key = entry.job.key
        if entry.status == RENDERING:
            return JobState(
                key=key,
                state=RENDERING,
                position=0,
                progress=entry.progress,
                eta_seconds=self._remaining_locked(entry, now),
            )
        position = next(i for i, queued in enumerate(self._queue) if queued is entry)
        schedule = self._schedule_locked(now)
        return JobState(
            key=key,
            state=QUEUED,
            position=position + 1,
            progress=0.0,
            eta_seconds=schedule[position][1],
        )

    def _finish_locked(self, entry: _Entry, error: LoopmarkError | None) -> None:
        key = entry.job.key
        if error is None:
            state = JobState(key=key, state=DONE, position=0, progress=1.0, eta_seconds=0.0)
        else:
            state = JobState(
                key=key,
                state=FAILED,
                position=0,
                progress=entry.progress,
                eta_seconds=None,
                error=error,
            )
        entry.status = state.state
        if self._active.get(key) is entry:
            del self._active[key]
        self._finished[key] = state
        self._finished.move_to_end(key)
        while len(self._finished) > self._finished_keep:
            self._finished.popitem(last=False)
        self._job_finished.notify_all()

    # -- workers -----------------------------------------------------------------------------

    def _start_workers_locked(self) -> None:
        while len(self._workers) < self.concurrency:
            worker = threading.Thread(
                target=self._work, name=f"loopmark-render-{len(self._workers) + 1}", daemon=True
            )
            self._workers.append(worker)
            worker.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._work_ready.wait()
                if not self._queue:
                    return
                entry = self._queue.popleft()
                entry.status = RENDERING
                entry.started_at = self._clock()
                running = [e for e in self._active.values() if e.status == RENDERING]
                if len(running) > 1:
                    for other in running:
                        other.shared = True
            self._run(entry)

    def _run(self, entry: _Entry) -> None:
        job = entry.job
        # Assume the worst until the runner returns: even an exception that is not an Exception
        # (SystemExit) must not leave the key "rendering" for ever.
        outcome: LoopmarkError | None = ToolFailed("the render failed; please try again")
        try:
            self._runner(job, lambda fraction: self._report(entry, fraction))
            outcome = None
        except LoopmarkError as exc:
            outcome = exc
        except Exception:
            log.exception("render %s (template %s) crashed", job.key, job.template_id)
        finally:
            with self._lock:
                if outcome is None and entry.started_at is not None:
                    seconds = self._clock() - entry.started_at
                    self._measure_locked(job.template_id, seconds, shared=entry.shared)
                self._finish_locked(entry, outcome)

    def _report(self, entry: _Entry, fraction: float) -> None:
        value = clamp_fraction(fraction)
        with self._lock:
            # Progress only moves forward, and a finished job's late reports are ignored.
            if entry.status == RENDERING and value > entry.progress:
                entry.progress = value


def default_concurrency() -> int:
    """Renders at once when none is configured: the CPUs this process may run on."""
    try:
        # A container's CPU set, not the host's CPU count.
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _blend(previous: float | None, seconds: float) -> float:
    """An exponentially weighted mean: recent renders count most."""
    if previous is None:
        return seconds
    return (1 - ESTIMATE_WEIGHT) * previous + ESTIMATE_WEIGHT * seconds
