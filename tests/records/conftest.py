"""Fixtures and helpers shared by the records tests: a hand-moved clock, the backends every
contract runs against (a SQLite file, DynamoDB on moto), and threads released at once for races.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from loopmark.errors import ConfigInvalid
from tests.moto_server import reset

START = 1_700_000_000.0  # FakeClock's first reading: 2023-11-14 22:13:20 UTC
BACKENDS = ["sqlite", "dynamodb"]

T = TypeVar("T")


class FakeClock:
    """A clock the test moves by hand, so lease expiry needs no sleeping."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Adapter(Protocol):
    """What every records adapter has: ``setup`` before use, ``close`` after."""

    def setup(self) -> None: ...

    def close(self) -> None: ...


A = TypeVar("A", bound=Adapter)


def set_up(adapter: A) -> Iterator[A]:
    """For a fixture to ``yield from``: ``adapter`` after its setup, closed after the test."""
    adapter.setup()
    yield adapter
    adapter.close()


def assert_opening_connects_to_nothing(
    opener: Callable[[str], object], tmp_path: Path, bad_url: str
) -> None:
    """``opener`` (an ``open_*_records``) makes no file and needs no endpoint until its adapter
    is used, and refuses ``bad_url`` (ConfigInvalid)."""
    opener(f"sqlite:///{tmp_path / 'nothing.db'}")
    opener("dynamodb://no-such-table")  # no endpoint needed until used
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigInvalid):
        opener(bad_url)


def race(workers: int, task: Callable[[int], T]) -> list[T]:
    """Run ``task(i)`` on ``workers`` threads released at the same instant."""
    barrier = threading.Barrier(workers)

    def run(i: int) -> T:
        barrier.wait()
        return task(i)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, range(workers)))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def records_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty backend: a SQLite file, or a table on a clean moto server (``aws``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'loopmark.db'}"
    request.getfixturevalue("aws")
    return "dynamodb://loopmark-test"


@pytest.fixture(scope="session")
def serial_moto_endpoint(moto_endpoint: str) -> str:
    """The session's moto server, which is the serial one (see tests.moto_server)."""
    return moto_endpoint


@pytest.fixture(params=BACKENDS)
def racing_records_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Like ``records_url``, for races: DynamoDB on the serial moto server, since moto's threaded
    server does not serialise writes to one item as DynamoDB does."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'loopmark.db'}"
    request.getfixturevalue("aws")  # credentials and region
    endpoint = request.getfixturevalue("serial_moto_endpoint")
    reset(endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    return "dynamodb://loopmark-race"
