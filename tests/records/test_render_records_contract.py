"""The RenderRecords contract, run against every adapter (a SQLite file, DynamoDB on moto)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from loopmark.records import (
    MAX_ATTEMPTS,
    RenderRecord,
    RenderRecords,
    RenderStatus,
    open_render_records,
)
from tests.moto_server import START_TIMEOUT_SECONDS, free_port, reset

LEASE = 90.0
START = 1_700_000_000.0
MEDIA: dict[str, Any] = {
    "gif": "renders/k.gif",
    "mp4": "renders/k.mp4",
    "poster": "renders/k.jpg",
    "bytes": 123456,
    "frames": 48,
    "width": 480,
    "height": 270,
    "seconds": 3.2,
}
T = TypeVar("T")


class FakeClock:
    """A clock the test moves by hand, so lease expiry needs no sleeping."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# DynamoDB applies the writes to one item one at a time; moto's threaded server does not (it
# checks a condition, then writes, with no lock between), so under a true race two conditional
# writes can both pass there. Races run against a moto server that answers one request at a time:
# the same wire protocol and semantics, with DynamoDB's per-item serialisation.
SERIAL_MOTO_SERVER = """
import sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
)
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def serial(environ, start_response):
    with lock:
        return list(app(environ, start_response))
run_simple("127.0.0.1", int(sys.argv[1]), serial, threaded=True, request_handler=MotoRequestHandler)
"""


@pytest.fixture(scope="session")
def serial_moto_endpoint() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERIAL_MOTO_SERVER, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("serial moto server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "dynamodb"])
def records(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[RenderRecords]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'loopmark.db'}"
    else:
        request.getfixturevalue("aws")
        url = "dynamodb://loopmark-test"
    adapter = open_render_records(url, clock=clock)
    adapter.setup()
    yield adapter
    adapter.close()


def claim(
    records: RenderRecords, key: str, owner: str, caption: str = "Hello"
) -> RenderRecord | None:
    return records.claim_lease(
        key, owner=owner, template_id="bunny", caption=caption, lease_seconds=LEASE
    )


def race(workers: int, task: Callable[[int], T]) -> list[T]:
    """Run ``task(i)`` on ``workers`` threads released at the same instant."""
    barrier = threading.Barrier(workers)

    def run(i: int) -> T:
        barrier.wait()
        return task(i)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, range(workers)))


def test_get_of_an_unknown_key_is_none(records: RenderRecords) -> None:
    assert records.get("nope") is None


def test_claim_on_an_empty_key_is_held_by_the_owner(
    records: RenderRecords, clock: FakeClock
) -> None:
    held = claim(records, "k1", "alice")
    assert held == RenderRecord(
        key="k1",
        status="rendering",
        template_id="bunny",
        caption="Hello",
        owner="alice",
        lease_until=START + LEASE,
        progress=0.0,
        attempts=1,
        created_at=START,
        updated_at=START,
        media=None,
        error=None,
    )
    assert records.get("k1") == held
    assert held.lease_live(clock())


def test_a_second_owner_cannot_claim_a_live_lease(records: RenderRecords, clock: FakeClock) -> None:
    claim(records, "k1", "alice")
    clock.advance(LEASE)  # lease_until == now: still live
    assert claim(records, "k1", "bob") is None
    record = records.get("k1")
    assert record is not None and record.owner == "alice" and record.attempts == 1


def test_only_the_owner_completes_and_the_lease_is_cleared(
    records: RenderRecords, clock: FakeClock
) -> None:
    claim(records, "k1", "alice")
    assert records.complete("k1", owner="bob", media=MEDIA) is False
    assert records.get("k1").status == "rendering"  # type: ignore[union-attr]
    clock.advance(5)
    assert records.complete("k1", owner="alice", media=MEDIA) is True
    done = records.get("k1")
    assert done is not None
    assert done.status == RenderStatus.DONE
    assert done.media == MEDIA
    assert (done.owner, done.lease_until, done.progress) == (None, 0.0, 1.0)
    assert done.updated_at == START + 5 and done.created_at == START
    assert records.complete("k1", owner="alice", media=MEDIA) is False  # done only once


def test_complete_of_an_unknown_key_is_refused(records: RenderRecords) -> None:
    assert records.complete("ghost", owner="alice", media=MEDIA) is False
    assert records.fail("ghost", owner="alice", error="x") is False
    assert records.extend_lease("ghost", owner="alice", lease_seconds=LEASE, progress=0.5) is False
    assert records.get("ghost") is None


def test_done_is_never_claimed_again(records: RenderRecords, clock: FakeClock) -> None:
    claim(records, "k1", "alice")
    records.complete("k1", owner="alice", media=MEDIA)
    for owner in ("alice", "bob"):
        assert claim(records, "k1", owner) is None
    clock.advance(365 * 24 * 3600)
    assert claim(records, "k1", "carol") is None
    assert records.get("k1").status == "done"  # type: ignore[union-attr]


def test_an_expired_lease_is_taken_over_by_exactly_one_contender(
    records: RenderRecords, clock: FakeClock
) -> None:
    claim(records, "k1", "crashed")
    clock.advance(LEASE + 1)
    results = {owner: claim(records, "k1", owner) for owner in ("b", "c", "d", "e")}
    winners = [owner for owner, held in results.items() if held is not None]
    assert winners == ["b"]
    held = results["b"]
    assert held is not None
    assert (held.owner, held.attempts, held.status) == ("b", 2, "rendering")
    assert held.lease_until == clock() + LEASE
    assert held.created_at == START and held.updated_at == clock()
    # The crashed render, if it wakes up, no longer holds anything.
    assert records.extend_lease("k1", owner="crashed", lease_seconds=LEASE, progress=0.9) is False
    assert records.complete("k1", owner="crashed", media=MEDIA) is False
    assert records.complete("k1", owner="b", media=MEDIA) is True


def test_a_render_that_keeps_crashing_is_taken_over_at_most_max_attempts_times(
    records: RenderRecords, clock: FakeClock
) -> None:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        held = claim(records, "k1", f"worker{attempt}")
        assert held is not None and held.attempts == attempt
        clock.advance(LEASE + 1)  # it dies without a word
    assert claim(records, "k1", "one-more") is None
    record = records.get("k1")
    assert record is not None and (record.status, record.attempts) == ("rendering", MAX_ATTEMPTS)


def test_a_failed_render_is_reclaimable_until_max_attempts(
    records: RenderRecords, clock: FakeClock
) -> None:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        held = claim(records, "k1", f"worker{attempt}")
        assert held is not None and held.attempts == attempt and held.error is None
        assert records.fail("k1", owner="someone-else", error="nope") is False
        assert records.fail("k1", owner=f"worker{attempt}", error=f"boom {attempt}") is True
        failed = records.get("k1")
        assert failed is not None
        assert (failed.status, failed.error, failed.owner) == ("failed", f"boom {attempt}", None)
        clock.advance(1)
    assert claim(records, "k1", "late") is None
    clock.advance(LEASE * 10)
    assert claim(records, "k1", "later") is None
    assert records.get("k1").attempts == MAX_ATTEMPTS  # type: ignore[union-attr]


@pytest.mark.parametrize("before", ["nothing", "rendering", "expired", "done", "failed"])
def test_block_overrides_anything_and_is_never_claimable(
    records: RenderRecords, clock: FakeClock, before: str
) -> None:
    if before != "nothing":
        claim(records, "k1", "alice")
    if before == "expired":
        clock.advance(LEASE + 1)
    if before == "done":
        records.complete("k1", owner="alice", media=MEDIA)
    if before == "failed":
        records.fail("k1", owner="alice", error="boom")
    records.block("k1", reason="taken down by admin")
    blocked = records.get("k1")
    assert blocked is not None
    assert (blocked.status, blocked.error, blocked.owner) == (
        "blocked",
        "taken down by admin",
        None,
    )
    assert not blocked.lease_live(clock())
    assert claim(records, "k1", "bob") is None
    clock.advance(LEASE * 100)
    assert claim(records, "k1", "carol") is None
    assert records.complete("k1", owner="alice", media=MEDIA) is False
    assert records.extend_lease("k1", owner="alice", lease_seconds=LEASE, progress=0.5) is False
    assert records.list_recent() == []
    records.block("k1", reason="again")  # blocking twice is fine
    assert records.get("k1").error == "again"  # type: ignore[union-attr]


def test_extend_lease_only_by_the_owner_and_progress_is_stored(
    records: RenderRecords, clock: FakeClock
) -> None:
    claim(records, "k1", "alice")
    clock.advance(60)
    assert records.extend_lease("k1", owner="bob", lease_seconds=LEASE, progress=0.9) is False
    assert records.extend_lease("k1", owner="alice", lease_seconds=LEASE, progress=0.4) is True
    record = records.get("k1")
    assert record is not None
    assert (record.progress, record.lease_until) == (0.4, START + 60 + LEASE)
    clock.advance(60)  # past the first lease, inside the extended one
    assert claim(records, "k1", "bob") is None
    assert records.extend_lease("k1", owner="alice", lease_seconds=LEASE, progress=1.7) is True
    assert records.get("k1").progress == 1.0  # type: ignore[union-attr]


def test_list_recent_newest_first_with_filters_and_limit(
    records: RenderRecords, clock: FakeClock
) -> None:
    done = [
        ("k1", "bunny", "Hello World"),
        ("k2", "cat", "hello again"),
        ("k3", "bunny", "Straße party"),
        ("k4", "bunny", "50% off"),
        ("k5", "cat", "Goodbye"),
    ]
    for key, template_id, caption in done:
        clock.advance(10)
        records.claim_lease(
            key, owner="w", template_id=template_id, caption=caption, lease_seconds=LEASE
        )
        records.complete(key, owner="w", media={**MEDIA, "gif": f"{key}.gif"})
    claim(records, "rendering", "w", caption="hello rendering")
    claim(records, "failed", "w", caption="hello failed")
    records.fail("failed", owner="w", error="boom")
    claim(records, "blocked", "w", caption="hello blocked")
    records.complete("blocked", owner="w", media=MEDIA)
    records.block("blocked", reason="no")

    def keys(**kwargs: Any) -> list[str]:
        return [r.key for r in records.list_recent(**kwargs)]

    assert keys() == ["k5", "k4", "k3", "k2", "k1"]
    assert keys(limit=2) == ["k5", "k4"]
    assert keys(before=START + 30) == ["k2", "k1"]  # strictly older than k3's time
    assert keys(template_id="bunny") == ["k4", "k3", "k1"]
    assert keys(template_id="bunny", limit=2) == ["k4", "k3"]
    assert keys(template_id="nope") == []
    assert keys(query="HELLO") == ["k2", "k1"]
    assert keys(query="STRASSE") == ["k3"]  # full case folding, not only ASCII
    assert keys(query="0% o") == ["k4"] and keys(query="%") == ["k4"]  # literal, not a wildcard
    assert keys(query="hello", template_id="cat") == ["k2"]
    assert keys(query="hello", before=START + 15) == ["k1"]
    first = records.list_recent(limit=1)[0]
    assert first.media == {**MEDIA, "gif": "k5.gif"} and first.status == "done"


def test_setup_is_idempotent(records: RenderRecords) -> None:
    claim(records, "k1", "alice")
    records.setup()
    records.setup()
    records.check()
    assert records.get("k1").owner == "alice"  # type: ignore[union-attr]


@pytest.fixture(params=["sqlite", "dynamodb"])
def racing_records(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RenderRecords]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'loopmark.db'}"
    else:
        request.getfixturevalue("aws")  # credentials and region
        endpoint = request.getfixturevalue("serial_moto_endpoint")
        reset(endpoint)
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        url = "dynamodb://loopmark-race"
    adapter = open_render_records(url, clock=clock)
    adapter.setup()
    yield adapter
    adapter.close()


def test_twenty_threads_racing_for_one_key_yield_exactly_one_owner(
    racing_records: RenderRecords, clock: FakeClock
) -> None:
    records = racing_records
    results = race(20, lambda i: claim(records, "hot", f"worker{i}"))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert records.get("hot").owner == winners[0].owner  # type: ignore[union-attr]

    # The winner crashes; its lease expires; twenty contenders again, one takes over.
    clock.advance(LEASE + 1)
    results = race(20, lambda i: claim(records, "hot", f"rescuer{i}"))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].attempts == 2
    assert records.get("hot").owner == winners[0].owner  # type: ignore[union-attr]
