"""The render service end to end on real adapters: cache hits, one render per key, failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypedDict

import boto3
import pytest

from loopmark.composition import build_render_service, setup_backends
from loopmark.config import Settings
from loopmark.dispatch.base import RenderJob
from loopmark.errors import CaptionRejected, ConfigInvalid, StorageUnavailable, UnknownTemplate
from loopmark.records.stats import open_stats_records
from loopmark.records.words import open_word_records
from loopmark.renderer.render import render_key
from loopmark.service.purge import NoPurge, open_cdn_purge
from loopmark.service.record_cache import KEEP_SECONDS
from loopmark.service.render_service import (
    REPURGE_MARGIN_SECONDS,
    LeaseLost,
    RenderBlocked,
    RenderGaveUp,
    RenderOutcome,
    RenderService,
    TemplateChanged,
    _LeaseKeeper,
    media_keys,
)
from tests.service.conftest import make_settings

WAIT_S = 60.0  # generous: a bound against hangs, not a timing assertion


class Claim(TypedDict):
    """claim_lease's keywords besides the owner."""

    template_id: str
    caption: str
    lease_seconds: float


def done(service: RenderService, caption: str) -> RenderOutcome:
    outcome = service.request("small", caption, wait_s=WAIT_S)
    assert outcome.status == "done", outcome
    return outcome


def renders_done(service: RenderService) -> float:
    return float(service.metrics.renders.labels(result="done")._value.get())


def test_first_request_renders_then_the_cache_answers(service: RenderService) -> None:
    first = done(service, "Cache me")
    assert set(first.urls) == {"gif", "mp4", "poster", "card", "thumbnail"}
    assert first.media["card"] == media_keys(first.key)["card"] and first.media["card_bytes"] > 0
    assert first.urls["gif"].startswith("/media/r/")
    assert first.media["frames"] == 8 and first.media["width"] == 160
    for storage_key in media_keys(first.key).values():
        assert service.blobs.exists(storage_key)
    assert service.blobs.get(media_keys(first.key)["gif"])[:6] == b"GIF89a"

    second = service.request("small", "Cache me")
    assert second.status == "done" and second.key == first.key
    assert renders_done(service) == 1
    assert service.metrics.cache_hits._value.get() == 1
    assert service.status(first.key) == second


def test_nfd_caption_hits_the_nfc_render(service: RenderService) -> None:
    nfc = done(service, "Caf\u00e9")
    assert service.request("small", "Cafe\u0301").key == nfc.key
    assert renders_done(service) == 1


def test_fifty_identical_requests_render_once(service: RenderService, settings: Settings) -> None:
    # A second service over the same SQLite file and media folder stands in for another process.
    other = build_render_service(settings)
    barrier = threading.Barrier(50)

    def ask(i: int) -> RenderOutcome:
        target = service if i % 2 else other
        barrier.wait()
        return target.request("small", "Fifty at once", wait_s=WAIT_S)

    try:
        with ThreadPoolExecutor(50) as pool:
            outcomes = list(pool.map(ask, range(50)))
        keys = {o.key for o in outcomes}
        assert len(keys) == 1
        # Everyone ends up with the one render, whoever waited for whom.
        final = [service.status(o.key) for o in outcomes]
        assert all(f is not None and f.status == "done" for f in final)
        assert renders_done(service) + renders_done(other) == 1
        record = service.records.get(keys.pop())
        assert record is not None and record.attempts == 1
    finally:
        other.dispatcher.close()


def test_refused_input_never_reaches_a_render(service: RenderService) -> None:
    with pytest.raises(UnknownTemplate):
        service.request("no-such-template", "Hi")
    with pytest.raises(CaptionRejected):
        service.request("small", "\u202ekcuf")
    assert renders_done(service) == 0
    assert service.dispatcher.queue_depth() == 0


def test_a_blocked_key_is_never_rendered(service: RenderService) -> None:
    template = service.catalog.get("small")
    key = render_key(template, "Taken down")
    service.records.block(key, reason="admin")
    with pytest.raises(RenderBlocked):
        service.request("small", "Taken down", wait_s=1)
    assert renders_done(service) == 0
    assert not service.blobs.exists(media_keys(key)["gif"])


def test_a_caption_that_keeps_killing_its_worker_is_given_up(service: RenderService) -> None:
    template = service.catalog.get("small")
    key = render_key(template, "Poison")
    for attempt in range(3):
        held = service.records.claim_lease(
            key, owner=f"doomed{attempt}", template_id="small", caption="Poison", lease_seconds=0.01
        )
        assert held is not None
        time.sleep(0.02)  # each worker dies; its lease runs out
    with pytest.raises(RenderGaveUp):
        service.request("small", "Poison", wait_s=1)
    assert renders_done(service) == 0


def test_unknown_key_has_no_status(service: RenderService) -> None:
    assert service.status("a" * 24) is None


def test_metrics_are_exposed(service: RenderService) -> None:
    done(service, "Metrics")
    service.request("small", "Metrics")
    text = service.metrics.exposition().decode()
    for name in (
        'loopmark_renders_total{result="done"} 1.0',
        "loopmark_cache_hits_total 1.0",
        "loopmark_render_seconds_count 1.0",
        "loopmark_queue_depth 0.0",
        "loopmark_lease_takeovers_total 0.0",
    ):
        assert name in text


def test_storage_failure_marks_nothing_done_and_the_next_request_succeeds(
    aws: str, tmp_path: Path, workdir: Path
) -> None:
    settings = make_settings(tmp_path, workdir, LOOPMARK_STORAGE="s3://loopmark-media/renders")
    setup_backends(settings)
    service = build_render_service(settings)
    try:
        s3 = boto3.client("s3")
        s3.delete_bucket(Bucket="loopmark-media")  # every put now fails for real
        with pytest.raises(StorageUnavailable):
            service.request("small", "Storage down", wait_s=WAIT_S)
        key = render_key(service.catalog.get("small"), "Storage down")
        record = service.records.get(key)
        assert record is not None and record.status == "failed"
        assert renders_done(service) == 0

        service.blobs.setup()  # storage is back
        outcome = service.request("small", "Storage down", wait_s=WAIT_S)
        assert outcome.status == "done"
        assert outcome.urls["gif"].startswith("http")  # a presigned S3 URL
        body = s3.get_object(Bucket="loopmark-media", Key=f"renders/{media_keys(key)['gif']}")
        assert body["Body"].read()[:6] == b"GIF89a"
    finally:
        service.dispatcher.close()


def test_take_down_blocks_deletes_and_purges(service: RenderService) -> None:
    purged: list[list[str]] = []
    service.purge = lambda paths: purged.append(list(paths))
    outcome = done(service, "Take me down")
    keys = media_keys(outcome.key)
    assert service.blobs.get(keys["card"])[:2] == b"\xff\xd8"  # the share card was stored
    service.take_down(outcome.key, reason="admin: off-brand")
    assert not any(service.blobs.exists(k) for k in keys.values())
    assert not service.blobs.exists(f"r/{outcome.key[:2]}/{outcome.key}/card.jpg")
    assert len(purged) == 1
    # The media's served paths (local: /media/<storage key>), then the pages that show them.
    assert purged[0][: len(keys)] == [f"media/{k}" for k in keys.values()]
    assert f"media/r/{outcome.key[:2]}/{outcome.key}/card.jpg" in purged[0]
    assert {f"s/{outcome.key}", f"r/{outcome.key}", f"m/{outcome.key}.gif"} <= set(purged[0])
    assert f"m/{outcome.key}.card.jpg" in purged[0]
    # Again once a done record another server read just before the block is no longer kept
    # (service.record_cache): what it answered meanwhile must not stay in the CDN.
    deadline = time.monotonic() + KEEP_SECONDS + REPURGE_MARGIN_SECONDS + 5
    while len(purged) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert purged[1] == purged[0]
    record = service.records.get(outcome.key)
    assert record is not None and record.status == "blocked"
    with pytest.raises(RenderBlocked):
        service.request("small", "Take me down")
    with pytest.raises(RenderBlocked):
        service.status(outcome.key)


def test_brand_words_apply_to_the_next_caption(service: RenderService, settings: Settings) -> None:
    words = open_word_records(settings.records_url)
    words.add("banned", "carrots")
    service.words.invalidate()
    with pytest.raises(CaptionRejected) as excinfo:
        service.request("small", "I love CARROTS")
    assert excinfo.value.code == "caption_profanity"
    words.add("allowed", "hell")
    service.words.invalidate()
    assert done(service, "What the hell").status == "done"


def test_renders_and_cache_hits_are_counted(service: RenderService, settings: Settings) -> None:
    done(service, "Counted")
    service.request("small", "Counted")
    service.request("small", "Counted")
    service.stats.flush()  # type: ignore[union-attr]  # counts are written off the request path
    stats = open_stats_records(settings.records_url)
    assert [(t, n) for _, t, n in stats.renders_per_day(days=1)] == [("small", 1)]
    assert stats.cache_hit_rate(days=1) == pytest.approx(2 / 3)
    assert stats.top_captions(days=1)[0] == ("counted", 3)


def test_cdn_purge_configuration() -> None:
    assert isinstance(open_cdn_purge(None), NoPurge)
    assert open_cdn_purge("cloudfront://E123ABC").distribution_id == "E123ABC"  # type: ignore[attr-defined]
    with pytest.raises(ConfigInvalid):
        open_cdn_purge("fastly://x")


def test_polling_a_failed_render_queues_it_again(aws: str, tmp_path: Path, workdir: Path) -> None:
    settings = make_settings(tmp_path, workdir, LOOPMARK_STORAGE="s3://loopmark-polled/renders")
    setup_backends(settings)
    service = build_render_service(settings)
    try:
        boto3.client("s3").delete_bucket(Bucket="loopmark-polled")
        with pytest.raises(StorageUnavailable):
            service.request("small", "Poll me", wait_s=WAIT_S)
        key = render_key(service.catalog.get("small"), "Poll me")
        service.blobs.setup()
        # The visitor's page only polls GET /api/renders/<key>; that alone must recover.
        deadline = time.monotonic() + WAIT_S
        while (outcome := service.status(key)) is None or outcome.status != "done":
            assert outcome is not None and outcome.status in ("queued", "rendering")
            assert time.monotonic() < deadline
            time.sleep(0.05)
        record = service.records.get(key)
        assert record is not None and record.attempts == 1  # the outage gave its attempt back
    finally:
        service.dispatcher.close()


def test_outages_never_use_up_a_captions_attempts(aws: str, tmp_path: Path, workdir: Path) -> None:
    settings = make_settings(tmp_path, workdir, LOOPMARK_STORAGE="s3://loopmark-outage/renders")
    setup_backends(settings)
    service = build_render_service(settings)
    try:
        boto3.client("s3").delete_bucket(Bucket="loopmark-outage")
        for _ in range(5):  # more outages than MAX_ATTEMPTS
            with pytest.raises(StorageUnavailable):
                service.request("small", "Outage", wait_s=WAIT_S)
        service.blobs.setup()
        assert service.request("small", "Outage", wait_s=WAIT_S).status == "done"
    finally:
        service.dispatcher.close()


def test_a_take_down_during_storing_leaves_no_media(service: RenderService) -> None:
    real_put = service.blobs.put
    racing_key = render_key(service.catalog.get("small"), "Racing the admin")

    # Named as BlobStore.put names them, so it may stand in for the method.
    def put_then_take_down(key: str, data: bytes, *, content_type: str) -> None:
        if key.endswith("loop.gif"):
            service.take_down(racing_key, reason="admin, mid-render")
        real_put(key, data, content_type=content_type)

    service.blobs.put = put_then_take_down  # type: ignore[method-assign]
    with pytest.raises(RenderBlocked):
        service.request("small", "Racing the admin", wait_s=WAIT_S)
    # The request learns of the block while the worker may still be storing the other media;
    # once it finds its "done" refused it deletes them all (seen racing on a loaded machine).
    deadline = time.monotonic() + WAIT_S
    while any(service.blobs.exists(k) for k in media_keys(racing_key).values()):
        assert time.monotonic() < deadline, "the taken-down render's media stayed"
        time.sleep(0.05)
    record = service.records.get(racing_key)
    assert record is not None and record.status == "blocked"


def test_a_worker_trusts_a_checked_job_and_checks_again_when_the_words_moved(
    service: RenderService, settings: Settings
) -> None:
    words = open_word_records(settings.records_url)
    try:
        words.add("banned", "parsnips")
    finally:
        words.close()
    service.words.invalidate()
    _lists, version = service.words.current()
    assert version is not None
    template = service.catalog.get("small")
    # Checked against lists other than the worker's (or none known): the policy runs again.
    stale = "Parsnips for breakfast"
    stale_key = render_key(template, stale)
    for words_version in (None, version - 1):
        with pytest.raises(CaptionRejected):
            service.execute(RenderJob(stale_key, "small", stale, words_version), lambda _f: None)
    record = service.record(stale_key)
    assert record is not None and record.status == "failed"
    # Checked against the very lists the worker holds: trusted, rendered as it stands.
    trusted = "Parsnips for lunch"
    trusted_key = render_key(template, trusted)
    service.execute(RenderJob(trusted_key, "small", trusted, version), lambda _f: None)
    record = service.record(trusted_key)
    assert record is not None and record.status == "done"


def test_a_job_whose_template_changed_is_refused(service: RenderService) -> None:
    job = RenderJob("a" * 24, "small", "Hello", None)
    with pytest.raises(TemplateChanged):
        service.execute(job, lambda _f: None)


@pytest.fixture
def short_lease(tmp_path: Path, workdir: Path) -> Iterator[RenderService]:
    """A render service whose leases last one second."""
    settings = make_settings(tmp_path, workdir, LOOPMARK_LEASE_SECONDS="1")
    setup_backends(settings)
    service = build_render_service(settings)
    yield service
    service.close()


def test_a_heartbeat_keeps_a_quiet_render_leased_and_stops_with_it(
    short_lease: RenderService,
) -> None:
    """No progress for several leases (a template being prepared, media being stored): the
    heartbeat renews the lease, so nobody takes over; once the render ends, it lapses."""
    service, key = short_lease, "b" * 24
    claim = Claim(template_id="small", caption="Quiet", lease_seconds=1.0)
    assert service.records.claim_lease(key, owner=service.owner, **claim) is not None
    with _LeaseKeeper(service, key, lambda _fraction: None):
        time.sleep(2.5)
        assert service.records.claim_lease(key, owner="another", **claim) is None
    time.sleep(1.5)
    assert service.records.claim_lease(key, owner="another", **claim) is not None


def test_a_lost_lease_is_noticed_at_the_next_report(short_lease: RenderService) -> None:
    service, key = short_lease, "c" * 24
    claim = Claim(template_id="small", caption="Lost", lease_seconds=1.0)
    assert service.records.claim_lease(key, owner=service.owner, **claim) is not None
    # The records say another worker holds it now (ours lapsed and was taken over).
    service.records.fail(key, owner=service.owner, error="test", retryable=True)
    assert service.records.claim_lease(key, owner="another", **claim) is not None
    with pytest.raises(LeaseLost), _LeaseKeeper(service, key, lambda _fraction: None) as keeper:
        keeper(1.0)


def test_take_down_purges_media_where_the_cdn_serves_them(tmp_path: Path, workdir: Path) -> None:
    """Behind a CDN (LOOPMARK_MEDIA_BASE_URL), the purge names the URL paths the CDN caches:
    on AWS the bucket's `media/` prefix under the distribution's /media/ behaviour."""
    settings = make_settings(tmp_path, workdir, LOOPMARK_MEDIA_BASE_URL="https://cdn.example/media")
    setup_backends(settings)
    service = build_render_service(settings)
    purged: list[list[str]] = []
    service.purge = lambda paths: purged.append(list(paths))
    try:
        outcome = done(service, "Purge me")
        service.take_down(outcome.key, reason="test")
    finally:
        service.close()
    keys = media_keys(outcome.key)
    assert purged[0][: len(keys)] == [f"media/{k}" for k in keys.values()]


class CountingRecords:
    """The render records, counting the reads (``get``) made by one thread."""

    def __init__(self, records: object, thread: int) -> None:
        self._records = records
        self._thread = thread
        self.gets = 0

    def __getattr__(self, name: str) -> object:
        value = getattr(self._records, name)
        if name == "get":

            def get(key: str) -> object:
                if threading.get_ident() == self._thread:
                    self.gets += 1
                return value(key)

            return get
        return value


def test_a_held_request_does_not_poll_the_records_while_the_pool_holds_its_render(
    service: RenderService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request held for a quick render (RENDER_WAIT_SECONDS) is woken by the local pool when
    its render ends: it reads the record before and after, not every 0.2 s in between (ten
    reads per held request before: most of the records' load during the soak's spikes)."""
    render_and_store = service._render_and_store

    def slow(*args: object, **kwargs: object) -> object:
        time.sleep(1.5)  # a render that takes a while: old code read the records 7 times meanwhile
        return render_and_store(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_render_and_store", slow)
    counting = CountingRecords(service.records, threading.get_ident())
    monkeypatch.setattr(service, "records", counting)
    outcome = service.request("small", "Held, not polled", wait_s=WAIT_S)
    assert outcome.status == "done"
    assert counting.gets <= 2  # is it rendered already? and the outcome
