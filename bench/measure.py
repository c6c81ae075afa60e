"""Measuring from the parent: run a candidate in its pinned child, score a GIF against the truth.

SSIM follows the issue: decode every frame of the GIF with Pillow (composited, as a browser shows
it), convert to RGB, and average skimage's ``structural_similarity`` (channel_axis=2,
data_range=255) over frames against the unquantised frames.
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cases import REPO_ROOT

CHILD_TIMEOUT_SECONDS = 300.0
SSIM_DATA_RANGE = 255


class ChildFailed(RuntimeError):
    """A measuring child exited with an error; the message is the tail of its stderr."""


def run_json_child(
    module: str,
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout_s: float = CHILD_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Run ``python -m module args…`` from the repository root in a fresh process (its memory
    figures are its own) and return the JSON object it printed last."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        raise ChildFailed(proc.stderr[-3000:])
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


class MeasureFailed(Exception):
    """A child process failed; carries its stderr."""


@dataclass(frozen=True)
class ChildRun:
    rows: dict[str, tuple[float, float, Path]]  # row → (wall s, CPU s, the GIF it made)
    peak_rss_mb: float
    cpus: list[int]


def run_child(candidate: str, spec: Path, out_dir: Path) -> ChildRun:
    """Run one candidate in a fresh child (it pins itself to one core) and read its report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        report = run_json_child("bench.child", [candidate, str(spec), str(out_dir)])
    except ChildFailed as exc:
        raise MeasureFailed(f"{candidate} failed on {spec.parent}:\n{exc}") from None
    rows = {
        name: (float(row["seconds"]), float(row["cpu"]), Path(row["gif"]))
        for name, row in report["rows"].items()
    }
    return ChildRun(rows=rows, peak_rss_mb=float(report["peak_rss_mb"]), cpus=report["cpus"])


def decode_gif(data: bytes) -> list[Any]:
    """Every frame of a GIF as shown (disposal and transparency applied), as RGB arrays."""
    import numpy as np
    from PIL import Image, ImageSequence

    with Image.open(io.BytesIO(data)) as image:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)]


def gif_ssim(data: bytes, truth: Any) -> tuple[float | None, int]:
    """Mean SSIM over frames and the GIF's frame count; SSIM is None when the counts differ."""
    from skimage.metrics import structural_similarity

    frames = decode_gif(data)
    if len(frames) != len(truth) or frames[0].shape != truth[0].shape:
        return None, len(frames)
    scores = [
        # scikit-image's metrics carry no annotations (a third-party gap).
        structural_similarity(got, want, channel_axis=2, data_range=SSIM_DATA_RANGE)  # type: ignore[no-untyped-call]
        for got, want in zip(frames, truth, strict=True)
    ]
    return float(statistics.fmean(scores)), len(frames)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def score_gif(gif: Path, case_json: Path) -> tuple[float | None, int, int]:
    """SSIM, frame count and bytes of one GIF against its case's truth (a picklable pool task)."""
    from bench.cases import CaseSpec, load_truth

    data = gif.read_bytes()
    ssim, frames = gif_ssim(data, load_truth(CaseSpec.load(case_json)))
    return ssim, frames, len(data)
