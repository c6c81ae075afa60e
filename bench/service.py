"""The render-service benchmark: cache-hit latency and a burst of unique renders, with their stats.

Every measurement runs in a fresh child (``python -m bench.service_child PART CONFIG.json``), so
its memory is its own and nothing (an AWS environment, a warm estimator) leaks between parts:

- ``hits-sqlite``: a RenderService over SQLite and local files renders one caption, then times
  cache hits (``service.request``: template lookup, caption policy, key, records get, statistics
  counter, URLs) and the bare ``records.get`` + ``blobs.url`` part.
- ``hits-aws``: the same over DynamoDB and S3 on a moto server on loopback.
- ``burst-warm`` / ``burst-cold``: unique captions submitted at the same moment to a local pool
  of LOOPMARK_RENDER_CONCURRENCY workers; each job's first ETA against its real wait. *Warm*
  renders one caption first so the dispatcher has measured the template; *cold* starts from the
  dispatcher's default estimate, as right after a deploy.

This module is the parent's side (configuration, the children, the statistics); the measuring
code is in :mod:`bench.service_child`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import ChildFailed, run_json_child

HITS_SQLITE = "hits-sqlite"
HITS_AWS = "hits-aws"
BURST_WARM = "burst-warm"
BURST_COLD = "burst-cold"
PARTS = (HITS_SQLITE, HITS_AWS, BURST_WARM, BURST_COLD)

DEFAULT_TEMPLATE_ID = "wake-up"
DEFAULT_LOOKUPS = 2000
# Every DynamoDB hit is a few HTTP round trips to moto (records get, statistics counter), each
# a few milliseconds of Python on the other side: fewer lookups keep the part under a minute.
DEFAULT_AWS_LOOKUPS = 1000
DEFAULT_RENDERS = 50
DEFAULT_CONCURRENCY = 2
QUICK_LOOKUPS = 300
QUICK_RENDERS = 10
# Untimed hits first: the first few pay for connections and the word lists' first read.
WARMUP_LOOKUPS = 50
CHILD_TIMEOUT_SECONDS = 600.0
MS_PER_SECOND = 1000.0
KIB_PER_MB = 1024.0

# The targets of DESIGN.md ("Performance targets") and of the issue.
HIT_P99_MAX_MS = 5.0
ETA_ERROR_MEDIAN_MAX = 0.25

# What moto stands in for, and the environment boto3 reads to reach it (nothing else of the
# caller's AWS environment is passed on: no profile, no real credentials).
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
AWS_TABLE = "loopmark-bench"
AWS_BUCKET = "loopmark-bench-media"


class ServiceBenchFailed(Exception):
    """A part of the service bench failed; carries the child's stderr."""


@dataclass(frozen=True)
class ServiceBenchConfig:
    """What the children need, as plain JSON-able values."""

    templates_dir: str
    template_id: str
    data_dir: str  # LOOPMARK_DATA_DIR: its prepared/ folder is the shared prepared cache
    work_dir: str  # fresh records and media, one folder per part
    lookups: int = DEFAULT_LOOKUPS
    aws_lookups: int = DEFAULT_AWS_LOOKUPS
    renders: int = DEFAULT_RENDERS
    concurrency: int = DEFAULT_CONCURRENCY

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> ServiceBenchConfig:
        return cls(**json.loads(path.read_text()))


# -- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile, linear between the closest ranks (numpy's default method)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {pct}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of a list of durations, in milliseconds."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> LatencySummary:
        ms = [s * MS_PER_SECOND for s in seconds]
        return cls(
            count=len(ms),
            p50_ms=percentile(ms, 50),
            p95_ms=percentile(ms, 95),
            p99_ms=percentile(ms, 99),
            max_ms=max(ms),
        )


def eta_error(eta_s: float, actual_s: float) -> float:
    """|ETA − truth| / truth: 0.25 means the ETA was off by a quarter of the real wait."""
    if actual_s <= 0:
        raise ValueError(f"a real wait must be positive, got {actual_s}")
    return abs(eta_s - actual_s) / actual_s


def eta_bias(eta_s: float, actual_s: float) -> float:
    """(ETA − truth) / truth: negative when the ETA promised less than the real wait."""
    if actual_s <= 0:
        raise ValueError(f"a real wait must be positive, got {actual_s}")
    return (eta_s - actual_s) / actual_s


@dataclass(frozen=True)
class JobTiming:
    """One render of a burst, as its visitor saw it."""

    first_status: str  # "queued" | "rendering" (| "done" if it beat the first status read)
    position: int  # 1-based queue position first reported; 0 when it started at once
    eta_s: float | None  # the ETA first reported
    actual_s: float  # submit → done, as the visitor's polling saw it


@dataclass(frozen=True)
class EtaSummary:
    count: int  # jobs with an ETA (the others are left out)
    median: float
    p90: float
    max: float
    median_bias: float

    @classmethod
    def of(cls, jobs: Sequence[JobTiming]) -> EtaSummary | None:
        timed = [(j.eta_s, j.actual_s) for j in jobs if j.eta_s is not None and j.actual_s > 0]
        if not timed:
            return None
        errors = [eta_error(eta, actual) for eta, actual in timed]
        return cls(
            count=len(errors),
            median=float(statistics.median(errors)),
            p90=percentile(errors, 90),
            max=max(errors),
            median_bias=float(statistics.median(eta_bias(e, a) for e, a in timed)),
        )


@dataclass(frozen=True)
class HitResult:
    """Cache hits against one pair of backends."""

    backend: str
    lookups: int
    first_render_s: float  # the render the hits then find (not a target; for context)
    whole: LatencySummary  # service.request on a done key
    # The same lookups in the thread's CPU time: what the code costs, without the moments the
    # scheduler gave the core to another process (wall minus this is waiting, not work).
    whole_cpu: LatencySummary
    bare: LatencySummary  # records.get + blobs.url for the three media
    stats_count: LatencySummary | None  # the statistics counter every hit also writes

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HitResult:
        stats = data["stats_count"]
        return cls(
            backend=data["backend"],
            lookups=data["lookups"],
            first_render_s=data["first_render_s"],
            whole=LatencySummary(**data["whole"]),
            whole_cpu=LatencySummary(**data["whole_cpu"]),
            bare=LatencySummary(**data["bare"]),
            stats_count=LatencySummary(**stats) if stats is not None else None,
        )


@dataclass(frozen=True)
class BurstResult:
    """Unique renders submitted at one moment to the local pool."""

    label: str  # BURST_WARM | BURST_COLD
    renders: int
    concurrency: int
    warmup_render_s: float | None  # the one render that seeded the estimator (warm only)
    estimate_at_submit_s: float  # the dispatcher's per-render estimate when the burst began
    estimate_after_s: float  # and after it (its running mean of real renders)
    total_s: float  # first submit → last done
    cpu_busy: float  # CPU seconds (process + tools) ÷ (wall seconds × concurrency)
    peak_rss_mb: float  # the process's own high-water mark (VmHWM)
    tools_peak_rss_mb: float  # the largest tool it waited for (FFmpeg), RUSAGE_CHILDREN
    jobs: list[JobTiming]

    @property
    def seconds_per_render(self) -> float:
        """Wall seconds one worker spent per render during the burst."""
        return self.total_s * self.concurrency / self.renders

    @property
    def eta(self) -> EtaSummary | None:
        return EtaSummary.of(self.jobs)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BurstResult:
        jobs = [JobTiming(**job) for job in data.pop("jobs")]
        return cls(**data, jobs=jobs)


@dataclass(frozen=True)
class ServiceResults:
    config: ServiceBenchConfig
    hits: list[HitResult]
    bursts: list[BurstResult]
    prepared_reused: bool  # the render bench's prepared template was found, not built again
    total_seconds: float
    load_average: tuple[float, float]  # the machine's 1-minute load at the start and the end
    skipped: list[str]  # parts not run, with why

    def hit(self, backend_prefix: str) -> HitResult | None:
        return next((h for h in self.hits if h.backend.startswith(backend_prefix)), None)

    def burst(self, label: str) -> BurstResult | None:
        return next((b for b in self.bursts if b.label == label), None)


SQLITE_BACKEND = "SQLite + local files"
AWS_BACKEND = "DynamoDB + S3 on moto"


def hit_target_met(results: ServiceResults) -> bool | None:
    hit = results.hit(SQLITE_BACKEND)
    return None if hit is None else hit.whole.p99_ms < HIT_P99_MAX_MS


def eta_target_met(results: ServiceResults) -> bool | None:
    burst = results.burst(BURST_WARM)
    eta = burst.eta if burst is not None else None
    return None if eta is None else eta.median <= ETA_ERROR_MEDIAN_MAX


# -- the parent's side ------------------------------------------------------------------------


def child_env(aws_endpoint: str | None = None) -> dict[str, str]:
    """The caller's environment without any AWS or Loopmark setting; moto's when asked for."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "LOOPMARK_"))
    }
    if aws_endpoint is not None:
        env.update(AWS_TEST_ENV, AWS_ENDPOINT_URL=aws_endpoint)
    return env


def run_part(part: str, config_path: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run one part in a fresh child and return the JSON object it printed last."""
    try:
        return run_json_child(
            "bench.service_child",
            [part, str(config_path)],
            env=env,
            timeout_s=CHILD_TIMEOUT_SECONDS,
        )
    except ChildFailed as exc:
        raise ServiceBenchFailed(f"service bench part {part} failed:\n{exc}") from None


def prepare_shared(config: ServiceBenchConfig) -> bool:
    """Make sure the template is prepared in the shared cache; True when it already was."""
    from loopmark.renderer.prepare import prepare_template, prepared_folder_name
    from loopmark.renderer.templates import load_template

    template = load_template(Path(config.templates_dir), config.template_id)
    prepared_dir = Path(config.data_dir) / "prepared"
    folder = prepared_dir / template.id / prepared_folder_name(template.version)
    reused = (folder / "meta.json").is_file()
    prepare_template(template, prepared_dir)
    return reused


@contextmanager
def _moto(endpoint: str | None) -> Iterator[str]:
    if endpoint is not None:
        yield endpoint
        return
    # The tests' helper starts the same real server on loopback (the repository root is on
    # sys.path when the bench runs as ``python -m bench``); the serial one, since a worker's
    # claim races the request's "queued" and DynamoDB, unlike moto's threaded server, applies
    # conditional writes to one item one at a time.
    from tests.moto_server import serial_moto_server

    with serial_moto_server() as started:
        yield started


def run_service_bench(
    config: ServiceBenchConfig,
    *,
    parts: Sequence[str] = PARTS,
    aws_endpoint: str | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> ServiceResults:
    """Run the chosen parts (in PARTS order) and gather their results.

    ``aws_endpoint``: a running moto server to use; by default one is started for the AWS part.
    """
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    work = Path(config.work_dir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config_path = work / "config.json"
    config.save(config_path)
    reused = prepare_shared(config)
    log(
        f"service: template {config.template_id} "
        + ("prepared already (reused)" if reused else "prepared now (not timed)")
    )
    hits: list[HitResult] = []
    bursts: list[BurstResult] = []
    skipped: list[str] = []
    for part in (p for p in PARTS if p in parts):
        log(f"service: {part}")
        if part == HITS_AWS:
            moto_exe = Path(sys.executable).with_name("moto_server")
            if aws_endpoint is None and not moto_exe.is_file():
                skipped.append(f"{part}: no moto_server next to {sys.executable}")
                continue
            with _moto(aws_endpoint) as endpoint:
                hits.append(HitResult.from_json(run_part(part, config_path, child_env(endpoint))))
        elif part == HITS_SQLITE:
            hits.append(HitResult.from_json(run_part(part, config_path, child_env())))
        else:
            bursts.append(BurstResult.from_json(run_part(part, config_path, child_env())))
    return ServiceResults(
        config=config,
        hits=hits,
        bursts=bursts,
        prepared_reused=reused,
        total_seconds=time.perf_counter() - started,
        load_average=(load_start, os.getloadavg()[0]),
        skipped=skipped,
    )
