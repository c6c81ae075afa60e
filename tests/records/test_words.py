"""The WordListRecords contract, run against every adapter (a SQLite file, DynamoDB on moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopmark.errors import BadInput
from loopmark.records import WordListRecords, open_word_records
from loopmark.records.words import MAX_LIST_WORDS, MAX_WORD_CHARS, WORD_SHARDS, shard_of
from loopmark.renderer.caption_policy import WordLists, check_caption
from tests.records.conftest import assert_opening_connects_to_nothing, race, set_up


@pytest.fixture
def words(records_url: str) -> Iterator[WordListRecords]:
    yield from set_up(open_word_records(records_url))


def test_empty_lists_and_version_zero(words: WordListRecords) -> None:
    assert words.lists() == WordLists()
    assert words.version() == 0


def test_add_normalises_and_keeps_the_kinds_apart(words: WordListRecords) -> None:
    words.add("banned", "  ＦＯＯ  ")  # fullwidth letters, padding
    words.add("banned", "Straße")
    words.add("banned", "Big \t  Deal")
    words.add("allowed", "Scunthorpe")
    assert words.lists() == WordLists(
        banned=frozenset({"foo", "strasse", "big deal"}), allowed=frozenset({"scunthorpe"})
    )
    assert words.version() == 4


def test_the_lists_feed_the_caption_policy(words: WordListRecords) -> None:
    words.add("banned", "Globex")
    lists = words.lists()
    with pytest.raises(BadInput):
        check_caption("we love globex", lists)
    words.remove("banned", "GLOBEX")
    assert check_caption("we love globex", words.lists()) == "we love globex"


def test_adding_a_word_again_changes_nothing(words: WordListRecords) -> None:
    words.add("banned", "foo")
    words.add("banned", "FOO")
    words.add("banned", " foo ")
    assert words.lists().banned == {"foo"}
    assert words.version() == 1
    words.add("allowed", "foo")  # the other list is another list
    assert words.lists() == WordLists(banned=frozenset({"foo"}), allowed=frozenset({"foo"}))
    assert words.version() == 2


@pytest.mark.parametrize(
    "word",
    [
        "",
        "   ",
        "a" * (MAX_WORD_CHARS + 1),
        "x" * 10_000,
        "\u202efoo",  # a right-to-left override
        "fo\u200bo",  # a zero-width space
        "foo\x00",
        "\U000e0001",
        42,
        None,
    ],
)
def test_bad_words_are_refused(words: WordListRecords, word: Any) -> None:
    for kind in ("banned", "allowed"):
        with pytest.raises(BadInput):
            words.add(kind, word)
        with pytest.raises(BadInput):
            words.remove(kind, word)
        if isinstance(word, str) and not word.strip():
            continue  # an import skips blank lines (test_replace_imports_a_whole_list)
        with pytest.raises(BadInput):
            words.replace(kind, ["fine", word])
    assert words.lists() == WordLists() and words.version() == 0


def test_a_word_of_the_longest_length_is_fine(words: WordListRecords) -> None:
    word = "ü" * MAX_WORD_CHARS
    words.add("banned", word)
    assert words.lists().banned == {word}


@pytest.mark.parametrize("kind", ["", "Banned", "blocked", None])
def test_unknown_kinds_are_refused(words: WordListRecords, kind: Any) -> None:
    with pytest.raises(BadInput):
        words.add(kind, "foo")
    with pytest.raises(BadInput):
        words.remove(kind, "foo")
    with pytest.raises(BadInput):
        words.replace(kind, ["foo"])
    assert words.version() == 0


def test_remove(words: WordListRecords) -> None:
    words.add("banned", "foo")
    words.add("banned", "bar")
    assert words.remove("allowed", "foo") is False
    assert words.remove("banned", "FOO") is True
    assert words.lists().banned == {"bar"}
    assert words.version() == 3
    assert words.remove("banned", "foo") is False
    assert words.version() == 3
    assert words.remove("banned", "bar") is True
    assert words.lists() == WordLists() and words.version() == 4


def test_replace_imports_a_whole_list(words: WordListRecords) -> None:
    words.add("banned", "old")
    words.add("allowed", "kept")
    lines = ["Alpha", "", "beta  ", "ALPHA", "   ", "gamma ray", "Ｇａｍｍａ ray"]
    assert words.replace("banned", lines) == 3
    assert words.lists() == WordLists(
        banned=frozenset({"alpha", "beta", "gamma ray"}), allowed=frozenset({"kept"})
    )
    assert words.version() == 3
    assert words.replace("banned", iter(["gamma ray", "beta", "alpha"])) == 3  # the same list
    assert words.version() == 3
    assert words.replace("banned", []) == 0
    assert words.lists().banned == frozenset() and words.version() == 4
    words.add("banned", "new")  # the list works normally after an import
    assert words.lists().banned == {"new"}


def test_a_bad_word_in_an_import_changes_nothing_and_is_named(words: WordListRecords) -> None:
    words.replace("banned", ["one", "two"])
    with pytest.raises(BadInput, match="word 3"):
        words.replace("banned", ["three", "four", "fi\u202eve", "six"])
    with pytest.raises(BadInput):
        words.replace("banned", "one text, not a list")
    assert words.lists().banned == {"one", "two"} and words.version() == 1


def test_a_list_holds_at_most_the_limit(words: WordListRecords) -> None:
    full = [f"word{i:04d}-{'x' * 30}" for i in range(MAX_LIST_WORDS)]
    with pytest.raises(BadInput, match=str(MAX_LIST_WORDS)):
        words.replace("banned", [*full, "one-more"])
    assert words.version() == 0
    assert words.replace("banned", [*full, full[0].upper()]) == MAX_LIST_WORDS
    assert len(words.lists().banned) == MAX_LIST_WORDS
    with pytest.raises(BadInput, match="full"):
        words.add("banned", "one-more")
    words.add("banned", full[7])  # already there: fine
    words.add("allowed", "one-more")  # the other list has room
    assert words.remove("banned", full[0])
    words.add("banned", "one-more")
    banned = words.lists().banned
    assert len(banned) == MAX_LIST_WORDS and "one-more" in banned and full[0] not in banned


def test_words_spread_over_every_shard() -> None:
    # The DynamoDB adapter relies on an even, stable spread to keep each item small.
    counts = [0] * WORD_SHARDS
    for i in range(MAX_LIST_WORDS):
        counts[shard_of(f"word{i}")] += 1
    assert max(counts) < 1.25 * MAX_LIST_WORDS / WORD_SHARDS
    assert shard_of("foo") == shard_of("foo")


def test_reads_never_bump_the_version(words: WordListRecords) -> None:
    words.add("banned", "foo")
    for _ in range(3):
        words.lists()
        words.version()
    assert words.version() == 1


def test_setup_is_idempotent(words: WordListRecords) -> None:
    words.add("banned", "foo")
    words.setup()
    assert words.lists().banned == {"foo"} and words.version() == 1


def test_opening_connects_to_nothing(tmp_path: Path) -> None:
    assert_opening_connects_to_nothing(open_word_records, tmp_path, "words.txt")


@pytest.fixture
def racing_words(racing_records_url: str) -> Iterator[WordListRecords]:
    yield from set_up(open_word_records(racing_records_url))


def test_ten_admins_at_once_lose_no_word(racing_words: WordListRecords) -> None:
    words = racing_words
    race(10, lambda i: words.add("banned", f"word{i}"))
    assert words.lists().banned == {f"word{i}" for i in range(10)}
    assert words.version() == 10
    # Removing, re-adding the same word and importing the other list, all at once.
    race(10, lambda i: words.remove("banned", f"word{i}") if i < 5 else words.add("banned", "same"))
    assert words.lists().banned == {f"word{i}" for i in range(5, 10)} | {"same"}
    assert words.version() == 16
    results = race(10, lambda i: words.replace("allowed", [f"ok{i}", "shared"]))
    assert results == [2] * 10
    allowed = words.lists().allowed
    assert len(allowed) == 2 and "shared" in allowed
    words.add("allowed", "one-more")
    assert len(words.lists().allowed) == 3
