"""Time to GIF: CPU per caption until the GIF exists, against the whole render.

``python -m bench.service_time_to_gif [--repeats N] [--prepared DIR]`` renders each demo
template's first caption on one core (``taskset -c 1`` is the caller's), timing the render
service's two stages as it runs them: ``render_gif_stage`` (layout, compose, indices, GIF: what
a visitor waits for before the GIF is stored and recorded) and ``render_extras`` (poster, MP4,
share card). CPU is the process's plus its finished children's (FFmpeg, gifsicle); wall time
is the elapsed. Medians of ``--repeats``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from loopmark.renderer.prepare import prepare_template
from loopmark.renderer.render import (
    accept_caption,
    normalised_render_key,
    render_extras,
    render_gif_stage,
)
from loopmark.renderer.templates import iter_template_ids, load_template

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REPEATS = 5


def _child_cpu() -> float:
    """CPU of finished children (FFmpeg), user + system."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(prepared_dir: Path, repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    templates_dir = REPO / "templates_video"
    for template_id in iter_template_ids(templates_dir):
        template = load_template(templates_dir, template_id)
        prepared = prepare_template(template, prepared_dir)
        caption = accept_caption(template, template.captions[0])
        key = normalised_render_key(template, caption)
        gif_cpu, gif_wall, all_cpu, all_wall = [], [], [], []
        for _ in range(repeats + 1):  # the first is a warm-up
            cpu0, child0, wall0 = time.process_time(), _child_cpu(), time.perf_counter()
            stage = render_gif_stage(prepared, caption, key)
            cpu1, child1, wall1 = time.process_time(), _child_cpu(), time.perf_counter()
            for _kind, _payload in render_extras(prepared, stage):
                pass
            cpu2, child2, wall2 = time.process_time(), _child_cpu(), time.perf_counter()
            gif_cpu.append(cpu1 - cpu0 + child1 - child0)
            gif_wall.append(wall1 - wall0)
            all_cpu.append(cpu2 - cpu0 + child2 - child0)
            all_wall.append(wall2 - wall0)
        results[template_id] = {
            "frames": stage.frames,
            "width": stage.width,
            "gif_bytes": len(stage.gif),
            "cpu_until_gif_s": round(statistics.median(gif_cpu[1:]), 3),
            "wall_until_gif_s": round(statistics.median(gif_wall[1:]), 3),
            "cpu_whole_render_s": round(statistics.median(all_cpu[1:]), 3),
            "wall_whole_render_s": round(statistics.median(all_wall[1:]), 3),
        }
        row = results[template_id]
        row["gif_share_of_cpu"] = round(row["cpu_until_gif_s"] / row["cpu_whole_render_s"], 2)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=REPO / "var" / "prepared")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.prepared, args.repeats), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
