"""Tests of the render-service bench: its statistics, its report, and one tiny real run.

The tiny run uses the suite's small template (already prepared for the session) over SQLite and
over DynamoDB + S3 on the session's moto server. Nothing here asserts a duration.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import parse_args
from bench.report import (
    NOTES_MARKER,
    SERVICE_HEADING,
    service_burst_table,
    service_eta_table,
    service_hits_table,
    service_section,
    service_verdicts,
    split_notes,
    with_notes,
    with_service_section,
)
from bench.service import (
    AWS_BACKEND,
    BURST_COLD,
    BURST_WARM,
    SQLITE_BACKEND,
    BurstResult,
    EtaSummary,
    HitResult,
    JobTiming,
    LatencySummary,
    ServiceBenchConfig,
    ServiceResults,
    eta_bias,
    eta_error,
    eta_target_met,
    hit_target_met,
    percentile,
    run_service_bench,
)
from loopmark.renderer.prepare import PreparedTemplate

# -- statistics -------------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(list(map(float, range(1, 101))), 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize(("values", "pct"), [([], 50), ([1.0], -1), ([1.0], 100.5)])
def test_percentile_refuses_no_values_and_out_of_range(values: list[float], pct: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, pct)


def test_latency_summary_is_in_milliseconds() -> None:
    summary = LatencySummary.of([0.001] * 98 + [0.002, 0.010])
    assert summary.count == 100
    assert summary.p50_ms == pytest.approx(1.0)
    assert summary.max_ms == pytest.approx(10.0)
    assert 1.0 < summary.p99_ms < 10.0


def test_eta_error_is_relative_to_the_real_wait_and_bias_keeps_the_sign() -> None:
    assert eta_error(7.5, 10.0) == pytest.approx(0.25)
    assert eta_error(12.5, 10.0) == pytest.approx(0.25)
    assert eta_bias(7.5, 10.0) == pytest.approx(-0.25)
    assert eta_bias(12.5, 10.0) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        eta_error(1.0, 0.0)


def test_eta_summary_leaves_out_jobs_without_an_eta() -> None:
    jobs = [
        JobTiming("queued", 1, 1.0, 2.0),  # -50 %
        JobTiming("queued", 2, 3.0, 3.0),  # 0 %
        JobTiming("queued", 3, 4.4, 4.0),  # +10 %
        JobTiming("queued", 4, None, 5.0),
    ]
    eta = EtaSummary.of(jobs)
    assert eta is not None
    assert eta.count == 3
    assert eta.median == pytest.approx(0.10)
    assert eta.max == pytest.approx(0.50)
    assert eta.median_bias == pytest.approx(0.0)
    assert EtaSummary.of([JobTiming("queued", 1, None, 1.0)]) is None


# -- the report -------------------------------------------------------------------------------


def _summary(p99_ms: float) -> LatencySummary:
    return LatencySummary(count=10, p50_ms=0.2, p95_ms=0.5, p99_ms=p99_ms, max_ms=p99_ms * 2)


def _results(hit_p99_ms: float, eta_s: float) -> ServiceResults:
    config = ServiceBenchConfig(
        templates_dir="t", template_id="wake-up", data_dir="d", work_dir="w"
    )
    hit = HitResult(
        SQLITE_BACKEND, 10, 0.5, _summary(hit_p99_ms), _summary(0.1), _summary(0.1), None
    )
    jobs = [JobTiming("queued", i + 1, eta_s * (i + 1), float(i + 1)) for i in range(4)]
    burst = BurstResult(
        label=BURST_WARM,
        renders=4,
        concurrency=2,
        warmup_render_s=0.4,
        estimate_at_submit_s=0.4,
        estimate_after_s=0.5,
        total_s=2.0,
        cpu_busy=0.9,
        peak_rss_mb=150.0,
        tools_peak_rss_mb=120.0,
        jobs=jobs,
    )
    return ServiceResults(config, [hit], [burst], True, 60.0, (1.0, 1.5), [])


def test_targets_pass_and_fail_on_their_thresholds() -> None:
    good = _results(hit_p99_ms=4.9, eta_s=1.2)  # every ETA 20 % long
    bad = _results(hit_p99_ms=5.0, eta_s=1.3)  # p99 not under 5 ms; ETAs 30 % long
    assert (hit_target_met(good), eta_target_met(good)) == (True, True)
    assert (hit_target_met(bad), eta_target_met(bad)) == (False, False)
    assert [line.count("PASS") for line in service_verdicts(good)] == [1, 1]
    assert [line.count("FAIL") for line in service_verdicts(bad)] == [1, 1]


def test_service_tables_have_one_row_per_measurement() -> None:
    results = _results(hit_p99_ms=1.0, eta_s=1.0)
    assert len(service_hits_table(results)) == 2 + 3  # no statistics counter row
    assert len(service_burst_table(results)) == 2 + 1
    eta_rows = service_eta_table(results)[2:]
    assert len(eta_rows) == 1 and "1–10" in eta_rows[0]


def test_service_section_replaces_an_old_one_and_keeps_the_render_tables() -> None:
    render_part = "# Render benchmark\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    first = with_service_section(render_part, [SERVICE_HEADING, "", "old numbers"])
    second = with_service_section(first, [SERVICE_HEADING, "", "new numbers"])
    assert second.startswith(render_part.rstrip("\n"))
    assert "new numbers" in second and "old numbers" not in second
    assert second.count(SERVICE_HEADING) == 1
    assert with_service_section("", ["x"]) == "x"


def test_notes_added_by_hand_are_kept_last_across_runs() -> None:
    notes = f"{NOTES_MARKER}\n\n## Measured by hand\n\nkept\n"
    page = with_notes("# Render benchmark\n\nnew tables\n", notes)
    assert split_notes(page) == ("# Render benchmark\n\nnew tables\n", notes)
    with_service = with_service_section(page, [SERVICE_HEADING, "", "service numbers"])
    body, kept = split_notes(with_service)
    assert kept == notes and "service numbers" in body and body.startswith("# Render benchmark")
    assert split_notes("no notes") == ("no notes", "") and with_notes("x", "") == "x"


def test_service_flags_are_exclusive() -> None:
    assert parse_args(["--service-only"]).service_only
    assert parse_args(["--no-service"]).no_service
    with pytest.raises(SystemExit):
        parse_args(["--service-only", "--no-service"])


# -- one tiny real run ------------------------------------------------------------------------


def test_a_tiny_real_run_measures_every_part(
    aws: str, workdir: Path, small: PreparedTemplate, tmp_path: Path
) -> None:
    config = ServiceBenchConfig(
        templates_dir=str(workdir / "templates"),
        template_id=small.template.id,
        data_dir=str(workdir),  # the session's prepared cache
        work_dir=str(tmp_path / "service"),
        lookups=50,
        aws_lookups=50,
        renders=5,
        concurrency=2,
    )
    results = run_service_bench(config, aws_endpoint=aws)

    assert results.prepared_reused
    assert results.skipped == []
    assert [h.backend for h in results.hits] == [SQLITE_BACKEND, AWS_BACKEND]
    for hit in results.hits:
        assert hit.whole.count == hit.bare.count == 50
        assert 0 < hit.whole.p50_ms <= hit.whole.p99_ms <= hit.whole.max_ms
        assert hit.stats_count is not None and hit.stats_count.count == 50
    assert [b.label for b in results.bursts] == [BURST_WARM, BURST_COLD]
    for burst in results.bursts:
        assert len(burst.jobs) == 5
        assert all(job.actual_s > 0 and job.eta_s is not None for job in burst.jobs)
        assert burst.total_s >= max(job.actual_s for job in burst.jobs) * 0.99
        assert burst.peak_rss_mb > 0 and burst.tools_peak_rss_mb > 0
        # A snapshot when each was submitted (workers may have taken jobs in between), so
        # positions can repeat, but a queued job is somewhere in a queue of at most 5.
        queued = [job.position for job in burst.jobs if job.first_status == "queued"]
        assert all(1 <= p <= 5 for p in queued)
        assert [job.position for job in burst.jobs] == sorted(job.position for job in burst.jobs)
    warm, cold = results.bursts
    assert warm.warmup_render_s is not None and cold.warmup_render_s is None
    assert cold.estimate_at_submit_s == pytest.approx(1.0)  # the dispatcher's default
    assert warm.estimate_at_submit_s != pytest.approx(1.0)  # measured by the seeding render

    section = "\n".join(service_section(results, "python -m bench --service-only"))
    assert section.startswith(SERVICE_HEADING)
    assert "DynamoDB + S3 on moto" in section and "ETA error by queue position" in section
