"""The pinned child: ``python -m bench.child CANDIDATE SPEC.json OUT_DIR`` runs one candidate.

It pins itself to one core before doing anything else, so every tool it starts (FFmpeg, gifsicle,
gifski) inherits the pin, and prints one JSON line: the candidate's rows, its peak RSS and the
CPUs it ran on.

Peak RSS is the largest of this process's own high-water mark and ``RUSAGE_CHILDREN``'s
``ru_maxrss`` (the largest tool it waited for). The process's own mark is read from
``/proc/self/status`` (VmHWM), not ``RUSAGE_SELF``: Linux carries the parent's high-water mark
across fork and exec into ``ru_maxrss``, so the bench's own memory (numpy, scikit-image) would
show up in every candidate.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

BENCH_CORE = 0
PREPARE = "prepare"


def _own_high_water_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def peak_rss_mb() -> float:
    """Peak resident set of this process or of its largest waited-for tool (both in KiB)."""
    tools = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(_own_high_water_kib(), tools) / 1024


def main(argv: list[str]) -> int:
    os.sched_setaffinity(0, {BENCH_CORE})
    candidate, spec_path, out_dir = argv
    from bench import competitors
    from bench.cases import CaseSpec, TemplateSpec

    if candidate == PREPARE:
        spec = TemplateSpec(**json.loads(Path(spec_path).read_text()))
        rows = competitors.prepare(spec, Path(out_dir))
    else:
        rows = competitors.CANDIDATES[candidate](CaseSpec.load(Path(spec_path)), Path(out_dir))
    report = {"rows": rows, "peak_rss_mb": peak_rss_mb(), "cpus": sorted(os.sched_getaffinity(0))}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
