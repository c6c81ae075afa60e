"""LambdaDispatcher over a real lambda-local server: the event it sends, states, failures."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from loopmark.dispatch import RenderJob, open_dispatcher
from loopmark.dispatch.aws_lambda import (
    BACKOFF_SECONDS,
    RECENT_SUBMIT_SECONDS,
    SUBMIT_ATTEMPTS,
    SUBMIT_DEDUP_SECONDS,
    THROTTLE_RETRY_SECONDS,
    LambdaDispatcher,
)
from loopmark.dispatch.lambda_local import make_server
from loopmark.errors import DispatchUnavailable
from tests.dispatch.conftest import LambdaLocal, set_fake_aws_env
from tests.moto_server import free_port


def _job(caption: str = "Hello") -> RenderJob:
    return RenderJob(key=f"k{uuid.uuid4().hex[:20]}", template_id="bunny-hop", caption=caption)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_handler_receives_exactly_the_event(lambda_env: LambdaLocal) -> None:
    dispatcher = open_dispatcher("lambda://loopmark-render", lambda j, r: None)
    job = _job('Ça va? 🎉 مرحبا «quotes» "and" \\ backslashes')
    try:
        state = dispatcher.submit(job)
        assert (state.key, state.state, state.position) == (job.key, "queued", 1)
        received = [e for e in lambda_env.drain() if e["event"].get("key") == job.key]
        assert len(received) == 1
        assert received[0]["event"] == job.to_event()
        assert received[0]["function"] == "loopmark-render"
        assert RenderJob.from_event(received[0]["event"]) == job
    finally:
        dispatcher.close()


def test_a_function_arn_with_a_qualifier_is_invoked(lambda_env: LambdaLocal) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:loopmark-arn:live"
    dispatcher = open_dispatcher(f"lambda://{arn}", lambda j, r: None)
    job = _job()
    try:
        dispatcher.submit(job)
        received = [e for e in lambda_env.drain() if e["event"].get("key") == job.key]
        assert [e["function"] for e in received] == ["loopmark-arn"]
    finally:
        dispatcher.close()


def test_states_come_only_from_recent_submissions(lambda_env: LambdaLocal) -> None:
    clock = FakeClock()
    dispatcher = LambdaDispatcher("loopmark-render", clock=clock)
    job = _job()
    try:
        assert dispatcher.state(job.key) is None
        dispatcher.submit(job)
        state = dispatcher.wait(job.key, 30.0)  # answers at once: only the records know more
        assert state is not None and (state.state, state.eta_seconds) == ("queued", None)
        assert dispatcher.queue_depth() == 0
        clock.now += RECENT_SUBMIT_SECONDS + 1
        assert dispatcher.state(job.key) is None
        # Once forgotten, a submit sends the event again (the handler's lease dedupes it).
        dispatcher.submit(job)
        received = [e for e in lambda_env.drain() if e["event"].get("key") == job.key]
        assert len(received) == 2
    finally:
        dispatcher.close()


def test_check_is_a_dry_run_invoke(lambda_env: LambdaLocal) -> None:
    dispatcher = open_dispatcher("lambda://loopmark-render", lambda j, r: None)
    before = len(lambda_env.drain())
    dispatcher.check()
    # A dry run reaches the endpoint but runs nothing.
    assert len(lambda_env.drain()) == before
    dispatcher.close()


def test_an_unreachable_endpoint_is_dispatch_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    set_fake_aws_env(monkeypatch, f"http://127.0.0.1:{free_port()}")
    dispatcher = open_dispatcher("lambda://loopmark-render", lambda j, r: None)
    job = _job()
    try:
        with pytest.raises(DispatchUnavailable) as caught:
            dispatcher.submit(job)
        assert caught.value.code == "dispatch_unavailable"
        assert caught.value.__cause__ is not None
        # A failed submit leaves nothing behind that would read as "queued".
        assert dispatcher.state(job.key) is None
        with pytest.raises(DispatchUnavailable):
            dispatcher.check()
    finally:
        dispatcher.close()


def test_missing_credentials_are_dispatch_unavailable(
    lambda_local: LambdaLocal, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_fake_aws_env(monkeypatch, lambda_local.endpoint)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    dispatcher = open_dispatcher("lambda://loopmark-render", lambda j, r: None)
    with pytest.raises(DispatchUnavailable):
        dispatcher.submit(_job())
    dispatcher.close()


def test_a_throttled_submit_is_retried_with_backoff_then_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """lambda-local answers 429 TooManyRequestsException past its backlog, as a throttled
    function does; the dispatcher tries SUBMIT_ATTEMPTS times with growing waits, then gives
    DispatchUnavailable with AWS's Retry-After (503 + Retry-After upstream)."""
    release = threading.Event()
    started = threading.Event()
    received: list[Any] = []

    def handler(event: Any, context: Any) -> None:
        received.append(event)
        started.set()
        assert release.wait(30)

    server = make_server("127.0.0.1", 0, handler, max_running_events=1, max_pending_events=1)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    set_fake_aws_env(monkeypatch, f"http://127.0.0.1:{server.server_address[1]}")
    waits: list[float] = []
    dispatcher = LambdaDispatcher("loopmark-render", sleep=waits.append)
    try:
        first = _job()
        dispatcher.submit(first)
        assert started.wait(30)
        with pytest.raises(DispatchUnavailable) as caught:
            dispatcher.submit(_job())
        assert caught.value.retry_after_s == THROTTLE_RETRY_SECONDS
        assert len(waits) == SUBMIT_ATTEMPTS - 1
        assert all(0 < wait <= BACKOFF_SECONDS * 2**i for i, wait in enumerate(waits))
        # Once the function has room again, the retry goes through: one event, not two.
        waits.clear()
        second = _job("Second")

        def release_then_wait(seconds: float) -> None:
            waits.append(seconds)
            release.set()  # the running render ends, so the function has room again
            time.sleep(seconds)

        dispatcher._sleep = release_then_wait
        assert dispatcher.submit(second).state == "queued"
    finally:
        release.set()
        dispatcher.close()
        server.shutdown()
        server.server_close()
        serving.join(10)
    assert received[0] == first.to_event()
    assert received.count(second.to_event()) == 1
    assert len(waits) >= 1


def test_a_resubmit_after_the_dedup_window_is_sent_again(lambda_env: LambdaLocal) -> None:
    """Fifty submits at once send one event; a submit well after (a render to take over from a
    crashed worker) is sent again, and the lease keeps the render single."""
    clock = FakeClock()
    dispatcher = LambdaDispatcher("loopmark-render", clock=clock)
    job = _job("Again")
    try:
        for _ in range(50):
            dispatcher.submit(job)
        clock.now += SUBMIT_DEDUP_SECONDS + 1
        assert dispatcher.submit(job).state == "queued"
        received = [e for e in lambda_env.drain() if e["event"].get("key") == job.key]
        assert [e["event"] for e in received] == [job.to_event(), job.to_event()]
    finally:
        dispatcher.close()
