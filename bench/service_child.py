"""One part of the service bench in its own process: ``python -m bench.service_child PART CFG``.

Builds a RenderService the way the site does (``Settings.from_env`` over a mapping, then
``setup_backends`` and ``build_render_service``), measures, and prints one JSON line. The
process is fresh, so its high-water mark (VmHWM) is the part's own.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.child import _own_high_water_kib
from bench.service import (
    AWS_BACKEND,
    AWS_BUCKET,
    AWS_TABLE,
    BURST_COLD,
    BURST_WARM,
    HITS_AWS,
    HITS_SQLITE,
    KIB_PER_MB,
    SQLITE_BACKEND,
    WARMUP_LOOKUPS,
    BurstResult,
    HitResult,
    JobTiming,
    LatencySummary,
    ServiceBenchConfig,
    ServiceBenchFailed,
)

if TYPE_CHECKING:
    from loopmark.config import Settings
    from loopmark.service.render_service import RenderOutcome, RenderService

# A single render (the first one, with font loading) finishes well within this; it bounds hangs.
RENDER_WAIT_SECONDS = 120.0
BURST_DEADLINE_SECONDS = 600.0
# Between two status reads a visitor's thread sleeps on the dispatcher's wait, which returns as
# soon as its job ends: "done" is seen within milliseconds, not a polling interval.
POLL_SECONDS = 0.25
HIT_CAPTION = "Five more minutes"
# The warm burst's first render: an ordinary caption, as the first visitor after a deploy sends;
# its seconds (first-render costs included) are the dispatcher's only measurement at the burst.
SEED_CAPTION = "Rise and hop"


def burst_caption(index: int) -> str:
    """Unique, policy-clean captions, short enough for the smallest template (the tests')."""
    return f"Coffee #{index + 1}, then hop"


def settings_for(config: ServiceBenchConfig, part: str, **overrides: str) -> Settings:
    from loopmark.config import Settings

    part_dir = Path(config.work_dir) / part
    env = {
        "LOOPMARK_DATA_DIR": config.data_dir,
        "LOOPMARK_TEMPLATES_DIR": config.templates_dir,
        "LOOPMARK_STORAGE": f"file://{part_dir / 'media'}",
        "LOOPMARK_RECORDS": f"sqlite:///{part_dir / 'loopmark.db'}",
        "LOOPMARK_DISPATCH": "local",
        **overrides,
    }
    return Settings.from_env(env)


def open_service(settings: Settings) -> RenderService:
    from loopmark.composition import build_render_service, setup_backends

    setup_backends(settings)
    return build_render_service(settings)


def render_once(service: RenderService, template_id: str, caption: str) -> tuple[str, float]:
    """Render a caption to done; its key and seconds."""
    started = time.perf_counter()
    outcome = service.request(template_id, caption, wait_s=RENDER_WAIT_SECONDS)
    if outcome.status != "done":
        raise ServiceBenchFailed(f"{caption!r} is {outcome.status} after {RENDER_WAIT_SECONDS}s")
    return outcome.key, time.perf_counter() - started


def measure_hits(config: ServiceBenchConfig, part: str) -> HitResult:
    from loopmark.service.render_service import media_keys

    if part == HITS_AWS:
        backend, lookups = AWS_BACKEND, config.aws_lookups
        overrides = {
            "LOOPMARK_RECORDS": f"dynamodb://{AWS_TABLE}",
            "LOOPMARK_STORAGE": f"s3://{AWS_BUCKET}/site",
        }
    else:
        backend, lookups, overrides = SQLITE_BACKEND, config.lookups, {}
    settings = settings_for(config, part, LOOPMARK_RENDER_CONCURRENCY="1", **overrides)
    service = open_service(settings)
    tid = config.template_id
    try:
        key, first_render_s = render_once(service, tid, HIT_CAPTION)
        storage_keys = list(media_keys(key).values())
        for _ in range(WARMUP_LOOKUPS):
            service.request(tid, HIT_CAPTION)
        whole: list[float] = []
        bare: list[float] = []
        counts: list[float] = []
        stats = service.stats
        # Interleaved, so that the three rows see the same moments of a noisy machine.
        whole_cpu: list[float] = []
        for _ in range(lookups):
            cpu_started = time.thread_time()
            started = time.perf_counter()
            outcome = service.request(tid, HIT_CAPTION)
            whole.append(time.perf_counter() - started)
            whole_cpu.append(time.thread_time() - cpu_started)
            if outcome.status != "done" or outcome.key != key:
                raise ServiceBenchFailed(f"lookup {len(whole)} was not a hit: {outcome.status}")
            started = time.perf_counter()
            record = service.records.get(key)
            urls = [service.blobs.url(storage_key) for storage_key in storage_keys]
            bare.append(time.perf_counter() - started)
            if record is None or record.status != "done" or len(urls) != len(storage_keys):
                raise ServiceBenchFailed("the bare lookup did not find the done record")
            if stats is not None:
                started = time.perf_counter()
                stats.count(template_id=tid, event="cache_hit", caption=HIT_CAPTION)
                counts.append(time.perf_counter() - started)
    finally:
        service.dispatcher.close()
    return HitResult(
        backend=backend,
        lookups=lookups,
        first_render_s=first_render_s,
        whole=LatencySummary.of(whole),
        whole_cpu=LatencySummary.of(whole_cpu),
        bare=LatencySummary.of(bare),
        stats_count=LatencySummary.of(counts) if counts else None,
    )


class _Visitor(threading.Thread):
    """Submits one caption when the barrier opens, then polls its status until done."""

    def __init__(
        self, service: RenderService, template_id: str, caption: str, barrier: threading.Barrier
    ) -> None:
        super().__init__(daemon=True)
        self.service = service
        self.template_id = template_id
        self.caption = caption
        self.barrier = barrier
        self.submitted_at = 0.0
        self.done_at = 0.0
        self.timing: JobTiming | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._visit()
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def _visit(self) -> None:
        self.barrier.wait()
        self.submitted_at = time.perf_counter()
        first = self.service.request(self.template_id, self.caption, wait_s=0)
        deadline = self.submitted_at + BURST_DEADLINE_SECONDS
        outcome: RenderOutcome | None = first
        while outcome is None or outcome.status != "done":
            if time.perf_counter() > deadline:
                raise ServiceBenchFailed(f"{self.caption!r} not done in {BURST_DEADLINE_SECONDS}s")
            self.service.dispatcher.wait(first.key, POLL_SECONDS)
            outcome = self.service.status(first.key)
        self.done_at = time.perf_counter()
        self.timing = JobTiming(
            first_status=first.status,
            position=first.position,
            eta_s=first.eta_seconds,
            actual_s=self.done_at - self.submitted_at,
        )


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    tools = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + tools.ru_utime + tools.ru_stime


def _render_side_by_side(service: Any, template_id: str, count: int) -> None:
    """``count`` seed renders at once, so the estimator has a time for renders that share the
    machine (a full queue's jobs always do)."""
    captions = [f"{SEED_CAPTION} {i + 2}" for i in range(count)]
    keys = [service.request(template_id, caption).key for caption in captions]
    for key in keys:
        deadline = time.monotonic() + BURST_DEADLINE_SECONDS
        while (outcome := service.status(key)) is None or outcome.status != "done":
            if time.monotonic() > deadline:
                raise ServiceBenchFailed(f"seed render {key} did not finish")
            time.sleep(0.02)


def measure_burst(config: ServiceBenchConfig, part: str) -> BurstResult:
    from loopmark.dispatch.local import LocalDispatcher

    settings = settings_for(
        config,
        part,
        LOOPMARK_RENDER_CONCURRENCY=str(config.concurrency),
        LOOPMARK_QUEUE_SIZE=str(max(config.renders, 1)),
    )
    service = open_service(settings)
    tid = config.template_id
    dispatcher = service.dispatcher
    if not isinstance(dispatcher, LocalDispatcher):
        raise ServiceBenchFailed(f"the burst needs the local pool, got {dispatcher!r}")
    try:
        # A running site has its templates loaded; loading is not what the burst measures.
        service.catalog.prepared(service.catalog.get(tid))
        warmup_s = None
        if part == BURST_WARM:
            # A warm server has rendered alone and beside other renders: one of each.
            _, warmup_s = render_once(service, tid, SEED_CAPTION)
            _render_side_by_side(service, tid, config.concurrency)
        estimate_before = dispatcher.estimate_seconds(tid)
        barrier = threading.Barrier(config.renders + 1)
        visitors = [
            _Visitor(service, tid, burst_caption(i), barrier) for i in range(config.renders)
        ]
        for visitor in visitors:
            visitor.start()
        cpu_before = _cpu_seconds()
        barrier.wait()
        for visitor in visitors:
            visitor.join(BURST_DEADLINE_SECONDS)
        cpu_used = _cpu_seconds() - cpu_before
        for visitor in visitors:
            if visitor.error is not None:
                raise ServiceBenchFailed(f"{visitor.caption!r} failed") from visitor.error
            if visitor.timing is None:
                raise ServiceBenchFailed(f"{visitor.caption!r} did not finish")
        total_s = max(v.done_at for v in visitors) - min(v.submitted_at for v in visitors)
        estimate_after = dispatcher.estimate_seconds(tid)
    finally:
        dispatcher.close()
    # In queue order: the jobs that started at once, then by the position first reported.
    ordered = sorted(visitors, key=lambda v: v.timing.position if v.timing else 0)
    return BurstResult(
        label=part,
        renders=config.renders,
        concurrency=config.concurrency,
        warmup_render_s=warmup_s,
        estimate_at_submit_s=estimate_before,
        estimate_after_s=estimate_after,
        total_s=total_s,
        cpu_busy=cpu_used / (total_s * config.concurrency),
        peak_rss_mb=_own_high_water_kib() / KIB_PER_MB,
        tools_peak_rss_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / KIB_PER_MB,
        jobs=[v.timing for v in ordered if v.timing is not None],
    )


def main(argv: list[str]) -> int:
    part, config_path = argv
    config = ServiceBenchConfig.load(Path(config_path))
    result: Any
    if part in (HITS_SQLITE, HITS_AWS):
        result = measure_hits(config, part)
    elif part in (BURST_WARM, BURST_COLD):
        result = measure_burst(config, part)
    else:
        print(f"unknown part {part!r}", file=sys.stderr)
        return 2
    print(json.dumps(dataclasses.asdict(result), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
