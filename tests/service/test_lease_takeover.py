"""A render killed midway: its lease expires and exactly one contender takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from loopmark.composition import build_render_service, setup_backends
from loopmark.config import Settings
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.render import render_key
from tests.paths import REPO
from tests.service.conftest import make_settings

LEASE_SECONDS = 2
BOUND_SECONDS = 60.0  # against hangs only


def test_killed_render_is_taken_over_exactly_once(
    tmp_path: Path, workdir: Path, small: PreparedTemplate
) -> None:
    overrides = {"LOOPMARK_LEASE_SECONDS": str(LEASE_SECONDS)}
    settings: Settings = make_settings(tmp_path, workdir, **overrides)
    setup_backends(settings)
    caption = "Crash test"
    sites = [build_render_service(settings) for _ in range(2)]
    key = render_key(sites[0].catalog.get("small"), caption)
    env = {
        **os.environ,
        "LOOPMARK_DATA_DIR": str(settings.data_dir),
        "LOOPMARK_TEMPLATES_DIR": str(settings.templates_dir),
        "LOOPMARK_STORAGE": settings.storage_url,
        "LOOPMARK_RECORDS": settings.records_url,
        "LOOPMARK_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.service.crashing_worker", key, caption],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "midway"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)

        # While the dead worker's lease is live, requests report its progress and start nothing.
        record = sites[0].records.get(key)
        assert record is not None and record.status == "rendering" and record.progress > 0
        outcome = sites[0].request("small", caption)
        assert outcome.status == "rendering"
        assert sites[0].dispatcher.queue_depth() == 0

        deadline = time.monotonic() + BOUND_SECONDS
        while record.lease_live(time.time()):
            assert time.monotonic() < deadline
            time.sleep(0.1)
            record = sites[0].records.get(key)
            assert record is not None

        barrier = threading.Barrier(10)

        def ask(i: int) -> str:
            barrier.wait()
            return sites[i % 2].request("small", caption, wait_s=BOUND_SECONDS).status

        with ThreadPoolExecutor(10) as pool:
            list(pool.map(ask, range(10)))
        final = sites[0].status(key)
        assert final is not None and final.status == "done"
        takeovers = sum(s.metrics.lease_takeovers._value.get() for s in sites)
        renders = sum(s.metrics.renders.labels(result="done")._value.get() for s in sites)
        assert takeovers == 1
        assert renders == 1
        record = sites[0].records.get(key)
        assert record is not None and record.attempts == 2
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
        for site in sites:
            site.dispatcher.close()
