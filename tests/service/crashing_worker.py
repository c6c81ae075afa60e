"""A render worker that is killed midway: it claims the lease, reports some progress, then hangs
until the test sends SIGKILL. Run as ``python -m tests.service.crashing_worker KEY CAPTION``."""

from __future__ import annotations

import sys
import time

from loopmark.composition import build_render_service
from loopmark.config import Settings
from loopmark.dispatch.base import RenderJob

HANG_SECONDS = 600


def main() -> None:
    key, caption = sys.argv[1], sys.argv[2]
    service = build_render_service(Settings.from_env(), with_dispatcher=False)

    def report(fraction: float) -> None:
        if fraction >= 0.3:
            print("midway", flush=True)
            time.sleep(HANG_SECONDS)

    service.execute(RenderJob(key, "small", caption), report)


if __name__ == "__main__":
    main()
