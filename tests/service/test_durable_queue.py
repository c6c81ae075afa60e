"""The durable queue in the render service (issue 10): an accepted render is recorded before it is
acknowledged, a restarted service dispatches again what was left, a stopping service finishes or
hands back its renders, and a full or stopping pool refuses without recording anything.

Real parts throughout: SQLite, local files, the real renderer on the small template, the real
local pool. A "restart" is a second service over the same records; a pool that never runs its
jobs stands for a process killed before its workers got to them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopmark.composition import build_render_service, setup_backends
from loopmark.config import Settings
from loopmark.dispatch import LocalDispatcher
from loopmark.dispatch.base import ProgressReport, RenderJob
from loopmark.dispatch.local import SHUTDOWN_RETRY_AFTER_SECONDS
from loopmark.errors import DispatchUnavailable, QueueFull
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.service.render_service import RenderService
from tests.service.conftest import make_settings

BOUND_SECONDS = 60.0  # against hangs only


@pytest.fixture
def settings(tmp_path: Path, workdir: Path, small: PreparedTemplate) -> Settings:
    settings = make_settings(tmp_path, workdir, LOOPMARK_RENDER_CONCURRENCY="1")
    setup_backends(settings)
    return settings


class Stalled:
    """A pool's runner that never starts its jobs: the process "dies" with them in memory."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, job: RenderJob, report: ProgressReport) -> None:
        self.release.wait(BOUND_SECONDS)


@pytest.fixture
def killed(settings: Settings) -> Iterator[RenderService]:
    """A service whose pool holds its jobs and never renders them."""
    service = build_render_service(settings, with_dispatcher=False)
    stalled = Stalled()
    service.attach(LocalDispatcher(stalled, concurrency=1, max_queue=10))
    yield service
    stalled.release.set()
    service.close()


@pytest.fixture
def restarted(settings: Settings) -> Iterator[RenderService]:
    service = build_render_service(settings)
    yield service
    service.close()


def wait_done(service: RenderService, keys: list[str]) -> None:
    """Until every key's record is done, reading the records only (no poll dispatches)."""
    deadline = time.monotonic() + BOUND_SECONDS
    while True:
        records = [service.record(key) for key in keys]
        if all(r is not None and r.status == "done" for r in records):
            return
        assert time.monotonic() < deadline, [(r.key, r.status) for r in records if r]
        time.sleep(0.05)


def test_an_accepted_render_is_recorded_queued_before_the_answer(
    killed: RenderService,
) -> None:
    killed.request("small", "Taken")
    outcome = killed.request("small", "Recorded  now")
    assert outcome.status == "queued"
    record = killed.record(outcome.key)
    assert record is not None
    assert (record.status, record.template_id, record.caption) == (
        "queued",
        "small",
        "Recorded now",  # normalised
    )
    assert record.attempts == 0 and record.queued_at > 0
    assert record.words_version == killed.words.current()[1]
    # The visitor's poll reads "queued" too, from the pool that holds it.
    status = killed.status(outcome.key)
    assert status is not None and (status.status, status.position) == ("queued", 1)


def test_a_restarted_service_finishes_every_accepted_render(
    killed: RenderService, restarted: RenderService
) -> None:
    keys = [killed.request("small", f"Survivor {n}").key for n in range(4)]
    assert [killed.record(k).status for k in keys] == ["queued"] * 4  # type: ignore[union-attr]
    # (The stalled pool's worker holds the first job: the process dies with all four in memory.)
    assert restarted.requeue_unfinished() == 4
    wait_done(restarted, keys)
    for key in keys:
        record = restarted.record(key)
        assert record is not None and record.attempts == 1 and record.media is not None
    assert restarted.requeue_unfinished() == 0


def test_a_poll_dispatches_a_queued_render_nobody_holds(
    killed: RenderService, restarted: RenderService
) -> None:
    key = killed.request("small", "Polled").key
    outcome = restarted.status(key)  # no start-up step ran: the poll dispatches it
    assert outcome is not None and outcome.status in ("queued", "rendering", "done")
    wait_done(restarted, [key])


def test_a_full_queue_refuses_and_records_nothing(settings: Settings) -> None:
    service = build_render_service(settings, with_dispatcher=False)
    stalled = Stalled()
    service.attach(LocalDispatcher(stalled, concurrency=1, max_queue=1))
    try:
        service.request("small", "Running")
        held = service.request("small", "Waiting")
        with pytest.raises(QueueFull) as caught:
            service.request("small", "Turned away")
        assert caught.value.retry_after_s >= 1
        assert service.record(held.key) is not None
        assert [r.caption for r in service.records.list_unfinished()] == ["Running", "Waiting"]
    finally:
        stalled.release.set()
        service.close()


def test_stop_finishes_running_renders_refuses_new_ones_and_keeps_queued_ones(
    settings: Settings,
) -> None:
    service = build_render_service(settings, with_dispatcher=False)
    slow = threading.Event()

    def slow_execute(job: RenderJob, report: ProgressReport) -> None:
        def crawl(fraction: float) -> None:  # a real render that takes a while
            report(fraction)
            slow.wait(0.1)

        service.execute(job, crawl)

    service.attach(LocalDispatcher(slow_execute, concurrency=1, max_queue=10))
    running = service.request("small", "Finishing").key
    queued = [service.request("small", f"Later {n}").key for n in range(2)]
    deadline = time.monotonic() + BOUND_SECONDS
    while (record := service.record(running)) is None or record.status != "rendering":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    stopper = threading.Thread(target=service.stop, kwargs={"grace_s": BOUND_SECONDS})
    stopper.start()
    try:
        deadline = time.monotonic() + BOUND_SECONDS
        while True:  # new renders are refused as soon as the stop begins
            try:
                service.request("small", "Too late")
            except DispatchUnavailable as exc:
                assert exc.retry_after_s == SHUTDOWN_RETRY_AFTER_SECONDS
                break
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert service.record(queued[0]).status == "queued"  # type: ignore[union-attr]
        polled = service.status(queued[0])  # a poll while stopping: still queued, no error
        assert polled is not None and polled.status == "queued"
    finally:
        slow.set()
        stopper.join(BOUND_SECONDS)
    assert not stopper.is_alive()
    finished = service.record(running)
    assert finished is not None and finished.status == "done", finished
    assert [r.key for r in service.records.list_unfinished()] == queued
    service.close()


def test_stop_hands_back_a_render_that_outlives_the_grace(settings: Settings) -> None:
    service = build_render_service(settings, with_dispatcher=False)
    never = threading.Event()

    def stuck_execute(job: RenderJob, report: ProgressReport) -> None:
        def stuck(fraction: float) -> None:
            report(fraction)
            never.wait(BOUND_SECONDS)

        service.execute(job, stuck)

    service.attach(LocalDispatcher(stuck_execute, concurrency=1, max_queue=10))
    try:
        key = service.request("small", "Handed back").key
        deadline = time.monotonic() + BOUND_SECONDS
        while (record := service.record(key)) is None or record.status != "rendering":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert service.stop(grace_s=0.2) == 1
        record = service.record(key)
        assert record is not None
        assert (record.status, record.owner, record.attempts) == ("queued", None, 0)
    finally:
        never.set()
    # The stopped worker's late report finds its lease gone and changes nothing.
    deadline = time.monotonic() + BOUND_SECONDS
    while service.record(key).status != "queued":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
    service.close()
    restarted = build_render_service(settings)
    try:
        assert restarted.requeue_unfinished() == 1
        wait_done(restarted, [key])
    finally:
        restarted.close()
