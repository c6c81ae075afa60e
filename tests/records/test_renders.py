"""Render records (loopmark.records.renders): the RenderRecords contract with its lease races, run
against every adapter (a SQLite file, DynamoDB on moto), then what is particular to each adapter.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from loopmark.records import (
    MAX_ATTEMPTS,
    RenderRecord,
    RenderRecords,
    RenderStatus,
    open_render_records,
)
from loopmark.records.dynamodb import TTL_ATTRIBUTE, DynamoTable
from loopmark.records.renders import (
    FAILED_RECORD_TTL_SECONDS,
    RECENT_PARTITION,
    UNFINISHED_PARTITION,
    DynamoRenderRecords,
    SqliteRenderRecords,
)
from loopmark.records.sqlite import SqliteDatabase
from loopmark.service.record_cache import KeptDoneRecords
from tests.records.conftest import START, FakeClock, race, set_up

LEASE = 90.0
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


@pytest.fixture(params=["adapter", "kept"])
def records(
    records_url: str, clock: FakeClock, request: pytest.FixtureRequest
) -> Iterator[RenderRecords]:
    """Each adapter, and each behind the render service's kept done records (the contract
    must hold through it too: service.record_cache)."""
    adapter = open_render_records(records_url, clock=clock)
    if request.param == "adapter":
        yield from set_up(adapter)
    else:
        yield from set_up(KeptDoneRecords(adapter))


def claim(
    records: RenderRecords, key: str, owner: str, caption: str = "Hello"
) -> RenderRecord | None:
    return records.claim_lease(
        key, owner=owner, template_id="bunny", caption=caption, lease_seconds=LEASE
    )


def test_get_of_an_unknown_key_is_none(records: RenderRecords) -> None:
    assert records.get("nope") is None


def test_claim_on_an_empty_key_is_held_by_the_owner(
    records: RenderRecords, clock: FakeClock
) -> None:
    held = claim(records, "k1", "alice")
    assert held == RenderRecord(
        key="k1",
        status=RenderStatus.RENDERING,
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


def test_an_infrastructure_failure_gives_the_attempt_back(
    records: RenderRecords, clock: FakeClock
) -> None:
    for attempt in range(MAX_ATTEMPTS + 2):
        held = claim(records, "k1", f"worker{attempt}")
        assert held is not None and held.attempts == 1
        assert records.fail("k1", owner=f"worker{attempt}", error="storage", retryable=True)
        clock.advance(1)
    failed = records.get("k1")
    assert failed is not None and (failed.status, failed.attempts) == ("failed", 0)


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


# --- the durable queue: enqueue, release, list_unfinished ---------------------------------------


def enqueue(
    records: RenderRecords, key: str, caption: str = "Hello", words: int | None = 7
) -> bool:
    return records.enqueue(key, template_id="bunny", caption=caption, words_version=words)


def test_an_accepted_render_is_recorded_queued_before_any_worker_claims_it(
    records: RenderRecords, clock: FakeClock
) -> None:
    assert enqueue(records, "k1") is True
    queued = records.get("k1")
    assert queued == RenderRecord(
        key="k1",
        status=RenderStatus.QUEUED,
        template_id="bunny",
        caption="Hello",
        owner=None,
        lease_until=0.0,
        progress=0.0,
        attempts=0,
        created_at=START,
        updated_at=START,
        media=None,
        error=None,
        words_version=7,
        queued_at=START,
    )
    assert isinstance(queued.status, RenderStatus) and queued.status == RenderStatus.QUEUED
    assert not queued.lease_live(clock())
    clock.advance(3)
    assert enqueue(records, "k1", words=None) is False  # queued already: keeps its place
    assert records.get("k1") == queued
    # Nothing but a claim moves it on: it is never done without media.
    assert records.complete("k1", owner="alice", media=MEDIA) is False
    assert records.extend_lease("k1", owner="alice", lease_seconds=LEASE, progress=0.5) is False
    assert records.fail("k1", owner="alice", error="x") is False
    assert records.list_recent() == []
    enqueue(records, "k2", words=None)
    assert records.get("k2").words_version is None  # type: ignore[union-attr]


def test_a_queued_render_is_claimed_by_exactly_one_worker_and_queueing_costs_no_attempt(
    records: RenderRecords, clock: FakeClock
) -> None:
    enqueue(records, "k1")
    clock.advance(2)
    results = {owner: claim(records, "k1", owner) for owner in ("a", "b", "c")}
    assert [owner for owner, held in results.items() if held is not None] == ["a"]
    held = records.get("k1")
    assert held is not None and held.status == "rendering" and held.owner == "a"
    assert held.attempts == 1 and held.created_at == START and held.words_version == 7
    assert records.complete("k1", owner="a", media=MEDIA) is True
    assert enqueue(records, "k1") is False  # done stays done
    assert records.get("k1").status == "done"  # type: ignore[union-attr]


def test_enqueue_leaves_live_done_and_blocked_records_alone(
    records: RenderRecords, clock: FakeClock
) -> None:
    claim(records, "live", "alice")
    claim(records, "done", "alice")
    records.complete("done", owner="alice", media=MEDIA)
    records.block("blocked", reason="taken down")
    for key in ("live", "done", "blocked"):
        before = records.get(key)
        assert enqueue(records, key) is False
        assert records.get(key) == before


def test_failed_and_crashed_renders_are_queued_again_with_their_attempts(
    records: RenderRecords, clock: FakeClock
) -> None:
    claim(records, "failed", "alice")
    records.fail("failed", owner="alice", error="boom")
    claim(records, "crashed", "bob")
    clock.advance(LEASE + 1)
    for key in ("failed", "crashed"):
        assert enqueue(records, key) is True
        queued = records.get(key)
        assert queued is not None
        assert (queued.status, queued.attempts, queued.owner, queued.error) == (
            "queued",
            1,
            None,
            None,
        )
        assert queued.queued_at == clock()
        held = claim(records, key, "carol")
        assert held is not None and held.attempts == 2
    # Out of attempts: never queued again.
    claim(records, "spent", "w0")
    for attempt in range(1, MAX_ATTEMPTS):
        records.fail("spent", owner=f"w{attempt - 1}", error="boom")
        claim(records, "spent", f"w{attempt}")
    records.fail("spent", owner=f"w{MAX_ATTEMPTS - 1}", error="boom")
    assert enqueue(records, "spent") is False
    assert records.get("spent").status == "failed"  # type: ignore[union-attr]


def test_a_render_handed_back_is_queued_again_with_its_attempt_returned(
    records: RenderRecords, clock: FakeClock
) -> None:
    enqueue(records, "k1")
    claim(records, "k1", "alice")
    clock.advance(4)
    assert records.release("k1", owner="bob") is False
    assert records.release("k1", owner="alice") is True
    queued = records.get("k1")
    assert queued is not None
    assert (queued.status, queued.owner, queued.attempts, queued.lease_until) == (
        "queued",
        None,
        0,
        0.0,
    )
    assert queued.queued_at == START + 4 and queued.words_version == 7
    # The worker that was stopped cannot finish it any more; the next claim can.
    assert records.complete("k1", owner="alice", media=MEDIA) is False
    assert records.release("k1", owner="alice") is False
    held = claim(records, "k1", "bob")
    assert held is not None and held.attempts == 1


def test_list_unfinished_is_queued_and_crashed_renders_oldest_first(
    records: RenderRecords, clock: FakeClock
) -> None:
    enqueue(records, "q1")
    clock.advance(1)
    claim(records, "crashed", "dead")
    clock.advance(1)
    enqueue(records, "q2")
    claim(records, "live", "alive")  # rendering under a live lease: being finished
    claim(records, "done", "alice")
    records.complete("done", owner="alice", media=MEDIA)
    claim(records, "failed", "alice")
    records.fail("failed", owner="alice", error="boom")
    records.block("blocked", reason="taken down")
    enqueue(records, "q3")
    records.block("q3", reason="taken down while queued")
    assert [r.key for r in records.list_unfinished()] == ["q1", "q2"]
    clock.advance(LEASE - 0.5)  # the crashed lease lapses; the live one is still inside its own
    assert [r.key for r in records.list_unfinished()] == ["q1", "crashed", "q2"]
    assert [r.key for r in records.list_unfinished(limit=2)] == ["q1", "crashed"]
    claim(records, "q1", "bob")
    assert [r.key for r in records.list_unfinished()] == ["crashed", "q2"]
    for attempt in range(2, MAX_ATTEMPTS + 1):  # a render that kills every worker
        clock.advance(LEASE + 1)
        claim(records, "crashed", f"dead{attempt}")
    clock.advance(LEASE + 1)  # every lease has lapsed now (oldest updated_at first)
    assert [r.key for r in records.list_unfinished()] == ["live", "q2", "q1"]


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


def test_renditions_are_recorded_as_they_land_only_by_the_owner(
    records: RenderRecords, clock: FakeClock
) -> None:
    claim(records, "k1", "alice")
    gif_only = {"gif": MEDIA["gif"], "bytes": 123456, "width": 480, "height": 270}
    assert records.record_renditions("k1", owner="bob", media=gif_only) is False
    assert records.get("k1").media is None  # type: ignore[union-attr]
    clock.advance(2)
    assert records.record_renditions("k1", owner="alice", media=gif_only) is True
    record = records.get("k1")
    assert record is not None
    # Still rendering, still held: the GIF is there, the MP4 not yet.
    assert (record.status, record.owner, record.media) == ("rendering", "alice", gif_only)
    assert record.updated_at == START + 2 and record.lease_live(clock())
    assert claim(records, "k1", "bob") is None
    assert records.complete("k1", owner="alice", media=MEDIA) is True
    assert records.get("k1").media == MEDIA  # type: ignore[union-attr]
    assert records.record_renditions("k1", owner="alice", media=gif_only) is False  # done
    assert records.get("k1").media == MEDIA  # type: ignore[union-attr]


def test_a_new_claim_forgets_the_renditions_of_a_crashed_render(
    records: RenderRecords, clock: FakeClock
) -> None:
    claim(records, "k1", "alice")
    assert records.record_renditions("k1", owner="alice", media={"gif": MEDIA["gif"]})
    clock.advance(LEASE + 1)  # alice died after storing the GIF
    held = claim(records, "k1", "bob")
    assert held is not None and held.media is None
    assert records.get("k1").media is None  # type: ignore[union-attr]


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


@pytest.fixture
def racing_records(racing_records_url: str, clock: FakeClock) -> Iterator[RenderRecords]:
    yield from set_up(open_render_records(racing_records_url, clock=clock))


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


# --- SQLite ---------------------------------------------------------------------------------------

STRESS_SECONDS = 2.0
THREADS = 20


@pytest.fixture
def sqlite_records(tmp_path: Path) -> Iterator[SqliteRenderRecords]:
    yield from set_up(SqliteRenderRecords(SqliteDatabase(tmp_path / "loopmark.db")))


def test_twenty_threads_of_mixed_work_never_see_database_is_locked(
    sqlite_records: SqliteRenderRecords,
) -> None:
    records = sqlite_records
    keys = [f"key{i}" for i in range(12)]
    errors: list[BaseException] = []
    completed: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def work(worker: int) -> None:
        rng = random.Random(worker)
        owner = f"worker{worker}"
        barrier.wait()
        deadline = time.monotonic() + STRESS_SECONDS
        try:
            while time.monotonic() < deadline:
                key = rng.choice(keys)
                action = rng.random()
                if action < 0.4:
                    held = records.claim_lease(
                        key, owner=owner, template_id="t", caption=key, lease_seconds=0.01
                    )
                    if held is None:
                        continue
                    records.extend_lease(key, owner=owner, lease_seconds=0.01, progress=0.5)
                    if rng.random() < 0.3:
                        records.fail(key, owner=owner, error="boom")
                    elif records.complete(key, owner=owner, media={"gif": f"{key}.gif"}):
                        with lock:
                            completed[key] += 1
                elif action < 0.9:
                    records.get(key)
                else:
                    records.list_recent(limit=5, query="key")
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(completed.values()) > 0  # the work really happened
    assert max(completed.values()) == 1  # done is written once per key, never re-claimed
    for key in keys:
        record = records.get(key)
        if key in completed:
            assert record is not None and record.status == "done"
        else:
            assert record is None or record.status in {"rendering", "failed"}


# --- DynamoDB -------------------------------------------------------------------------------------

TABLE = "loopmark-test"


@pytest.fixture
def dynamo_records(aws: str) -> Iterator[DynamoRenderRecords]:
    yield from set_up(DynamoRenderRecords(DynamoTable(TABLE), clock=lambda: START))


def raw_item(key: str) -> Mapping[str, object]:
    return boto3.client("dynamodb").get_item(TableName=TABLE, Key={"key": {"S": key}})["Item"]


def test_ttl_is_set_only_on_failed_records(dynamo_records: DynamoRenderRecords) -> None:
    records = dynamo_records
    records.claim_lease("k", owner="a", template_id="t", caption="c", lease_seconds=90)
    assert TTL_ATTRIBUTE not in raw_item("k")  # the lease never relies on TTL
    records.fail("k", owner="a", error="boom")
    assert raw_item("k")[TTL_ATTRIBUTE] == {"N": str(int(START + FAILED_RECORD_TTL_SECONDS))}
    records.claim_lease("k", owner="b", template_id="t", caption="c", lease_seconds=90)
    assert TTL_ATTRIBUTE not in raw_item("k")
    records.fail("k", owner="b", error="boom")
    records.block("k", reason="taken down")
    assert TTL_ATTRIBUTE not in raw_item("k")  # blocked for ever, never garbage-collected
    records.claim_lease("d", owner="a", template_id="t", caption="c", lease_seconds=90)
    records.complete("d", owner="a", media={"gif": "d.gif"})
    assert TTL_ATTRIBUTE not in raw_item("d")


def test_the_listing_index_holds_done_and_unfinished_records_apart(
    dynamo_records: DynamoRenderRecords,
) -> None:
    records = dynamo_records
    records.enqueue("k", template_id="t", caption="c", words_version=None)
    assert raw_item("k")["listing"] == {"S": UNFINISHED_PARTITION}
    records.claim_lease("k", owner="a", template_id="t", caption="c", lease_seconds=90)
    assert raw_item("k")["listing"] == {"S": UNFINISHED_PARTITION}
    assert records.list_recent() == []
    records.complete("k", owner="a", media={"gif": "k.gif"})
    assert raw_item("k")["listing"] == {"S": RECENT_PARTITION}
    records.block("k", reason="taken down")
    assert "listing" not in raw_item("k")
    records.claim_lease("f", owner="a", template_id="t", caption="c", lease_seconds=90)
    records.fail("f", owner="a", error="boom")
    assert "listing" not in raw_item("f")
