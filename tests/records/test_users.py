"""The AdminUserRecords contract, run against every adapter (a SQLite file, DynamoDB on moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopmark.errors import BadInput
from loopmark.records import AdminUser, AdminUserRecords, open_user_records
from loopmark.records.users import MAX_ADMIN_USERS, MAX_HASH_CHARS
from tests.records.conftest import (
    START,
    FakeClock,
    assert_opening_connects_to_nothing,
    race,
    set_up,
)

HASH = "scrypt:32768:8:1$salt$0123456789abcdef"


@pytest.fixture
def users(records_url: str, clock: FakeClock) -> Iterator[AdminUserRecords]:
    yield from set_up(open_user_records(records_url, clock=clock))


def test_no_users_at_first(users: AdminUserRecords) -> None:
    assert users.get("alice") is None
    assert users.all() == []


def test_put_creates_a_user(users: AdminUserRecords) -> None:
    users.put("alice", HASH)
    assert users.get("alice") == AdminUser(name="alice", password_hash=HASH, created_at=START)
    assert users.get("bob") is None


def test_put_again_replaces_the_hash_and_keeps_the_creation_time(
    users: AdminUserRecords, clock: FakeClock
) -> None:
    users.put("alice", HASH)
    clock.advance(3600)
    users.put("alice", "new-hash")
    assert users.get("alice") == AdminUser("alice", "new-hash", START)
    users.put("alice", "new-hash")  # idempotent
    assert users.all() == [AdminUser("alice", "new-hash", START)]


def test_all_lists_every_user_by_name(users: AdminUserRecords, clock: FakeClock) -> None:
    for name in ("carol", "alice", "bob.smith", "d_e-f", "0"):
        users.put(name, f"hash-of-{name}")
        clock.advance(1)
    listed = users.all()
    assert [u.name for u in listed] == ["0", "alice", "bob.smith", "carol", "d_e-f"]
    assert listed[3] == AdminUser("carol", "hash-of-carol", START)
    assert listed[1].created_at == START + 1


def test_delete(users: AdminUserRecords) -> None:
    users.put("alice", HASH)
    users.put("bob", HASH)
    assert users.delete("alice") is True
    assert users.get("alice") is None
    assert users.delete("alice") is False
    assert users.delete("nobody") is False
    assert [u.name for u in users.all()] == ["bob"]
    users.put("alice", "again")
    assert users.get("alice") == AdminUser("alice", "again", START)


@pytest.mark.parametrize(
    "name", ["", "Alice", "a" * 41, "a b", "ålice", "x/y", "a#b", "hash:x", "a\n", None, 7]
)
def test_bad_names_are_refused_by_put_and_found_nowhere(users: AdminUserRecords, name: Any) -> None:
    with pytest.raises(BadInput, match="name"):
        users.put(name, HASH)
    assert users.get(name) is None
    assert users.delete(name) is False
    assert users.all() == []


def test_names_at_the_limits_are_fine(users: AdminUserRecords) -> None:
    for name in ("a", "a" * 40, "a.b_c-9"):
        users.put(name, HASH)
    assert [u.name for u in users.all()] == ["a", "a.b_c-9", "a" * 40]  # by name: "." < "a"


@pytest.mark.parametrize(
    "password_hash", ["", "   ", None, "x" * (MAX_HASH_CHARS + 1), "abc\ndef", "abc\x00"]
)
def test_empty_or_odd_hashes_are_refused(users: AdminUserRecords, password_hash: Any) -> None:
    with pytest.raises(BadInput, match="hash"):
        users.put("alice", password_hash)
    users.put("bob", HASH)
    with pytest.raises(BadInput, match="hash"):
        users.put("bob", password_hash)
    assert users.all() == [AdminUser("bob", HASH, START)]


def test_the_number_of_users_is_bounded(users: AdminUserRecords) -> None:
    for i in range(MAX_ADMIN_USERS):
        users.put(f"user{i}", HASH)
    with pytest.raises(BadInput, match="delete one"):
        users.put("one-more", HASH)
    users.put("user7", "new-hash")  # replacing is not adding
    assert users.get("user7") == AdminUser("user7", "new-hash", START)
    assert len(users.all()) == MAX_ADMIN_USERS
    assert users.delete("user0")
    users.put("one-more", HASH)
    assert users.get("one-more") is not None and len(users.all()) == MAX_ADMIN_USERS


def test_setup_is_idempotent(users: AdminUserRecords) -> None:
    users.put("alice", HASH)
    users.setup()
    assert users.get("alice") == AdminUser("alice", HASH, START)


def test_opening_connects_to_nothing(tmp_path: Path) -> None:
    assert_opening_connects_to_nothing(open_user_records, tmp_path, "sqlite://")


@pytest.fixture
def racing_users(racing_records_url: str, clock: FakeClock) -> Iterator[AdminUserRecords]:
    yield from set_up(open_user_records(racing_records_url, clock=clock))


def test_ten_puts_at_once_lose_no_user(racing_users: AdminUserRecords) -> None:
    users = racing_users
    race(10, lambda i: users.put(f"user{i}", f"hash{i}"))
    assert users.all() == [AdminUser(f"user{i}", f"hash{i}", START) for i in range(10)]
    # The same new user from ten tabs: created once, one of the hashes wins.
    race(10, lambda i: users.put("same", f"hash{i}"))
    same = users.get("same")
    assert same is not None and same.password_hash in {f"hash{i}" for i in range(10)}
    assert race(10, lambda i: users.delete(f"user{i}" if i % 2 else "same")).count(True) == 6
    assert [u.name for u in users.all()] == ["user0", "user2", "user4", "user6", "user8"]


SESSION = "a" * 64
OTHER_SESSION = "b" * 64


def test_a_session_lives_until_it_ends_or_expires(
    users: AdminUserRecords, clock: FakeClock
) -> None:
    users.put("alice", HASH)
    users.add_session(SESSION, "alice", expires_at=START + 100)
    assert users.session_user(SESSION) == "alice"
    assert users.session_user(OTHER_SESSION) is None
    assert users.session_user("not a hash") is None
    clock.advance(100)
    assert users.session_user(SESSION) is None  # expired


def test_logout_ends_one_session_and_a_new_password_ends_them_all(
    users: AdminUserRecords,
) -> None:
    users.put("alice", HASH)
    users.put("bob", HASH)
    users.add_session(SESSION, "alice", expires_at=START + 100)
    users.add_session(OTHER_SESSION, "alice", expires_at=START + 100)
    users.add_session("c" * 64, "bob", expires_at=START + 100)
    users.delete_session(SESSION)
    users.delete_session(SESSION)  # again: not an error
    assert users.session_user(SESSION) is None
    assert users.session_user(OTHER_SESSION) == "alice"
    users.put("alice", HASH)  # the same hash: not a new password
    assert users.session_user(OTHER_SESSION) == "alice"
    users.put("alice", HASH + "2")
    assert users.session_user(OTHER_SESSION) is None
    assert users.session_user("c" * 64) == "bob"
    users.delete("bob")
    assert users.session_user("c" * 64) is None


def test_failures_count_per_pair_and_per_address(users: AdminUserRecords, clock: FakeClock) -> None:
    for address in ("198.51.100.1", "198.51.100.1", "198.51.100.2"):
        users.add_failure("alice", address)
    users.add_failure("bob", "198.51.100.1")
    clock.advance(10)
    users.add_failure("alice", "198.51.100.1")
    since = [START - 1, START + 5]
    assert users.failures_since("alice", "198.51.100.1", since) == [(3, 4), (1, 1)]
    assert users.failures_since("alice", "198.51.100.2", since) == [(1, 1), (0, 0)]
    assert users.failures_since("alice", "203.0.113.9", since) == [(0, 0), (0, 0)]
    assert users.failures_since("bob", "198.51.100.1", since) == [(1, 4), (0, 1)]
    # Unlock forgets alice's failures and her addresses' counts, and nobody else's.
    users.add_failure("carol", "203.0.113.9")
    assert users.clear_failures("alice") == 4
    assert users.failures_since("alice", "198.51.100.1", since) == [(0, 0), (0, 0)]
    assert [by_address for _, by_address in users.failures_since("bob", "198.51.100.1", since)] == [
        0,
        0,
    ]
    assert users.failures_since("carol", "203.0.113.9", since) == [(1, 1), (1, 1)]
    assert users.clear_failures("nobody") == 0
