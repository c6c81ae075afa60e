"""Render records (loopmark.records.renders): the RenderRecords contract with its lease races, run
against every adapter (a SQLite file, DynamoDB on moto), then what is particular to each adapter.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
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
    DynamoRenderRecords,
    SqliteRenderRecords,
)
from loopmark.records.sqlite import SqliteDatabase
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


@pytest.fixture
def records(records_url: str, clock: FakeClock) -> Iterator[RenderRecords]:
    yield from set_up(open_render_records(records_url, clock=clock))


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


def raw_item(key: str) -> dict[str, object]:
    item: dict[str, object] = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"key": {"S": key}}
    )["Item"]
    return item


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


def test_only_done_records_are_in_the_listing_index(dynamo_records: DynamoRenderRecords) -> None:
    records = dynamo_records
    records.claim_lease("k", owner="a", template_id="t", caption="c", lease_seconds=90)
    assert "listing" not in raw_item("k")
    records.complete("k", owner="a", media={"gif": "k.gif"})
    assert "listing" in raw_item("k")
    records.block("k", reason="taken down")
    assert "listing" not in raw_item("k")
