"""The Dispatcher contract, run against every adapter: the local pool, and Lambda over lambda-local.

What a job "ran" means differs by adapter (the local runner was called; the Lambda handler got
the event), so each adapter comes with a harness that says which jobs ran.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from loopmark.dispatch import Dispatcher, JobState, RenderJob, open_dispatcher
from loopmark.dispatch.base import ProgressReport
from tests.dispatch.conftest import LambdaLocal, set_fake_aws_env

WAIT_SECONDS = 20.0


@dataclass
class Harness:
    dispatcher: Dispatcher
    # Every job that ran, given the keys submitted, once those have had their chance to run.
    collect: Callable[[list[str]], list[RenderJob]]
    # Lets held local jobs run (the Lambda handler does not hold).
    release: Callable[[], None]
    submitted: list[str] = field(default_factory=list)

    def submit(self, job: RenderJob) -> JobState:
        self.submitted.append(job.key)
        return self.dispatcher.submit(job)

    def ran(self) -> list[RenderJob]:
        return self.collect(self.submitted)


@dataclass
class LocalRuns:
    gate: threading.Event = field(default_factory=threading.Event)
    jobs: list[RenderJob] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def runner(self, job: RenderJob, report: ProgressReport) -> None:
        assert self.gate.wait(WAIT_SECONDS)
        with self.lock:
            self.jobs.append(job)


def _local_harness() -> Iterator[Harness]:
    runs = LocalRuns()
    dispatcher = open_dispatcher("local", runs.runner, concurrency=2)

    def collect(keys: list[str]) -> list[RenderJob]:
        runs.gate.set()
        for key in keys:
            dispatcher.wait(key, WAIT_SECONDS)
        with runs.lock:
            return list(runs.jobs)

    try:
        yield Harness(dispatcher, collect, runs.gate.set)
    finally:
        runs.gate.set()
        dispatcher.close()


def _lambda_harness(lambda_local: LambdaLocal) -> Iterator[Harness]:
    dispatcher = open_dispatcher("lambda://render-fn", lambda job, report: None)

    def collect(keys: list[str]) -> list[RenderJob]:
        events = lambda_local.drain()
        return [
            RenderJob.from_event(e["event"])
            for e in events
            if e["function"] == "render-fn" and e["event"].get("key") in keys
        ]

    try:
        yield Harness(dispatcher, collect, lambda: None)
    finally:
        dispatcher.close()


@pytest.fixture(params=["local", "lambda"])
def harness(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    if request.param == "local":
        yield from _local_harness()
    else:
        lambda_local: LambdaLocal = request.getfixturevalue("lambda_local")
        set_fake_aws_env(monkeypatch, lambda_local.endpoint)
        yield from _lambda_harness(lambda_local)


def _job(caption: str = "Hello there") -> RenderJob:
    return RenderJob(key=f"k{uuid.uuid4().hex[:20]}", template_id="bunny", caption=caption)


def test_submit_runs_the_job_once(harness: Harness) -> None:
    job = _job("Ça marche 🎉")
    state = harness.submit(job)
    assert state.key == job.key
    assert state.state in {"queued", "rendering", "done"}
    assert 0.0 <= state.progress <= 1.0
    assert harness.ran() == [job]


def test_submit_is_idempotent_while_the_job_is_pending(harness: Harness) -> None:
    job = _job()
    first = harness.submit(job)
    second = harness.submit(job)
    assert second.key == first.key == job.key
    assert second.state in {"queued", "rendering"}
    assert harness.ran() == [job]


def test_state_right_after_submit_knows_the_job(harness: Harness) -> None:
    job = _job()
    harness.submit(job)
    state = harness.dispatcher.state(job.key)
    assert state is not None
    assert state.key == job.key
    assert state.state in {"queued", "rendering", "done"}
    if state.state == "queued":
        assert state.position >= 1
    harness.release()


def test_unknown_keys_have_no_state(harness: Harness) -> None:
    assert harness.dispatcher.state("never-submitted") is None
    assert harness.dispatcher.wait("never-submitted", 0.01) is None


def test_distinct_jobs_all_run(harness: Harness) -> None:
    jobs = [_job(f"caption {i}") for i in range(5)]
    for job in jobs:
        harness.submit(job)
    assert sorted(harness.ran(), key=lambda j: j.key) == sorted(jobs, key=lambda j: j.key)


def test_health_depth_and_close(harness: Harness) -> None:
    harness.dispatcher.check()
    depth = harness.dispatcher.queue_depth()
    assert isinstance(depth, int) and depth >= 0
    harness.dispatcher.close()
    harness.dispatcher.close()
