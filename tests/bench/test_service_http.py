"""The request bench's arithmetic (bench/service_http.py); the bench itself runs the real
server and `hey`, outside `make test`."""

from __future__ import annotations

from typing import Any

import pytest

from bench import service_http


def batch(cpu_ms: float, p50: float = 1.0, p99: float = 2.0) -> dict[str, Any]:
    return {"server_cpu_ms": cpu_ms, "p50_ms": p50, "p99_ms": p99, "status_codes": {"200": 10}}


def test_a_case_is_summed_up_by_its_median_and_best_round() -> None:
    rows = [batch(0.8, p99=3.0), batch(0.5, p99=9.0), batch(0.625, p99=2.0)]
    summed = service_http.summary(rows, 2000)
    assert summed["server_cpu_ms"] == 0.625
    assert summed["server_cpu_ms_best"] == 0.5
    assert summed["per_core_per_second"] == 1600
    assert summed["per_core_per_second_best"] == 2000
    assert (summed["p99_ms"], summed["p99_ms_worst"]) == (3.0, 9.0)
    assert summed["rounds"] == 3 and summed["requests_per_round"] == 2000


def test_the_ratio_pairs_rounds_in_turn() -> None:
    this = [batch(0.5), batch(1.0), batch(0.6)]
    against = [batch(1.0), batch(1.0), batch(0.5)]
    assert service_http.ratio(this, against) == {"median": 1.0, "range": [0.5, 1.2]}
    with pytest.raises(ValueError):
        service_http.ratio(this, against[:2])


def test_the_cases_are_both_answers_at_both_concurrencies() -> None:
    assert [c[0] for c in service_http.CASES] == [
        "cache_hit_c1",
        "share_page_c1",
        "cache_hit_c8",
        "share_page_c8",
    ]
