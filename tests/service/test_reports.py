"""Visitors' reports kept in storage (local files and S3 on moto): one object per report, listed
per render newest first, capped per render, cleaned of control characters, dismissed whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopmark.errors import BadInput
from loopmark.service.reports import (
    MAX_REASON_CHARS,
    MAX_REPORTS_PER_KEY,
    REPORTS_PREFIX,
    Reports,
    clean_reason,
)
from loopmark.storage import BlobStore, open_blob_store

KEY_A = "a" * 24
KEY_B = "b2" * 12


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        url = f"file://{tmp_path / 'media'}"
    else:
        request.getfixturevalue("aws")
        url = "s3://loopmark-test/media/v1"
    blobs = open_blob_store(url)
    blobs.setup()
    return blobs


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1.5
        return self.now


def test_reports_are_listed_per_render_newest_first(store: BlobStore) -> None:
    reports = Reports(store, clock=Clock())
    assert reports.submit(KEY_A, "rude")
    assert reports.submit(KEY_B)
    assert reports.submit(KEY_A, "  spam\n\u202eevil\u200b  ")
    listed = reports.pending()
    assert [r.key for r in listed] == [KEY_A, KEY_B]  # A was reported last
    assert [r.reason for r in listed[0].reports] == ["spam evil", "rude"]
    assert listed[0].reasons == ["spam evil", "rude"] and listed[1].reasons == []
    assert listed[0].latest_at > listed[1].latest_at
    keys = [blob.key for blob in store.list(REPORTS_PREFIX)]
    assert len(keys) == 3 and all(key.startswith(REPORTS_PREFIX) for key in keys)
    assert all(not key.startswith("r/") for key in keys)  # never under the public media


def test_dismiss_deletes_a_renders_reports_only(store: BlobStore) -> None:
    reports = Reports(store, clock=Clock())
    reports.submit(KEY_A)
    reports.submit(KEY_A, "again")
    reports.submit(KEY_B)
    assert reports.dismiss(KEY_A) == 2
    assert [r.key for r in reports.pending()] == [KEY_B]
    assert reports.dismiss(KEY_A) == 0


def test_reports_of_one_render_are_capped(store: BlobStore) -> None:
    reports = Reports(store, clock=Clock())
    for _ in range(MAX_REPORTS_PER_KEY):
        assert reports.submit(KEY_A)
    assert not reports.submit(KEY_A)
    assert len(reports.pending()[0].reports) == MAX_REPORTS_PER_KEY


def test_a_malformed_key_is_refused(store: BlobStore) -> None:
    with pytest.raises(BadInput):
        Reports(store).submit("../../etc/passwd")
    with pytest.raises(BadInput):
        Reports(store).dismiss("A" * 24)


def test_a_damaged_report_still_counts(store: BlobStore) -> None:
    reports = Reports(store, clock=Clock())
    reports.submit(KEY_A, "fine")
    name = next(iter(store.list(REPORTS_PREFIX))).key
    store.put(name, b"not json", content_type="application/json")
    listed = reports.pending()
    assert len(listed) == 1 and listed[0].reports[0].reason == ""


def test_clean_reason() -> None:
    assert clean_reason("a\tb\r\nc") == "a b c"
    assert clean_reason("Cafe\u0301 \u2066x\u2069") == "Café x"
    assert len(clean_reason("x" * 2000)) == MAX_REASON_CHARS


def test_retention_deletes_reports_dealt_with_and_old_ones(store: BlobStore) -> None:
    clock = Clock()
    reports = Reports(store, clock=clock)
    reports.submit(KEY_A, "old news")  # made before the cutoff
    cutoff = clock.now + 1
    clock.now += 10
    reports.submit(KEY_A, "still open")
    reports.submit(KEY_B, "taken down since")
    dealt_with = {KEY_B}

    def count(dry_run: bool) -> int:
        return reports.collect_garbage(
            older_than=cutoff, resolved=dealt_with.__contains__, dry_run=dry_run
        )

    assert count(dry_run=True) == 2
    assert len(list(store.list(REPORTS_PREFIX))) == 3  # a dry run deletes nothing
    assert count(dry_run=False) == 2
    listed = reports.pending()
    assert [(r.key, r.reasons) for r in listed] == [(KEY_A, ["still open"])]
    assert count(dry_run=False) == 0
