"""Issue 10 on the AWS path: renders accepted by the site are recorded queued in DynamoDB before the
answer, so a Lambda runtime killed with their events (``lambda-local`` under SIGKILL: a killed
runtime lost 12 of 12 before) loses none of them. The visitors' polls dispatch again a queued
render nobody claimed within a lease, and a render killed mid-way once its lease lapses.
S3 and DynamoDB on moto's server, renders through the real handler; nothing is patched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopmark.composition import build_render_service
from loopmark.config import Settings
from loopmark.renderer.prepare import PreparedTemplate
from tests.moto_server import free_port, stop
from tests.paths import REPO
from tests.service.conftest import set_up_aws_site
from tests.service.test_aws_path import aws_env

RENDERS = 6
LEASE_SECONDS = 2
BOUND_SECONDS = 120.0  # against hangs only


class LambdaLocal:
    """``lambda-local`` running one event at a time, killable and restartable on one port."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **aws_env(tmp_path / "lambda"),
            "LOOPMARK_LEASE_SECONDS": str(LEASE_SECONDS),
            "PYTHONUNBUFFERED": "1",
        }
        self.log = tmp_path / "lambda-local.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loopmark.dispatch.lambda_local"]
                + ["--port", str(self.port), "--max-events", "1"],
                cwd=REPO,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + BOUND_SECONDS
        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=1).close()
            except urllib.error.HTTPError:
                return  # it answers (404 for /): up
            except OSError:
                assert self.proc.poll() is None, self.log.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline
                time.sleep(0.1)
            else:
                return

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(BOUND_SECONDS)


@pytest.fixture
def runtime(
    aws: str,
    tmp_path: Path,
    workdir: Path,
    small: PreparedTemplate,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[LambdaLocal]:
    set_up_aws_site(aws_env(tmp_path / "site"), workdir / "templates", workdir / "prepared")
    runtime = LambdaLocal(tmp_path)
    runtime.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", runtime.endpoint)
    try:
        yield runtime
    finally:
        if runtime.proc is not None:
            stop(runtime.proc)
        print(runtime.log.read_text(errors="replace")[-3000:])


def test_a_killed_lambda_runtime_loses_no_accepted_render(
    runtime: LambdaLocal, tmp_path: Path
) -> None:
    env = {**aws_env(tmp_path / "site"), "LOOPMARK_LEASE_SECONDS": str(LEASE_SECONDS)}
    site = build_render_service(Settings.from_env(env))
    try:
        keys = []
        for n in range(RENDERS):
            outcome = site.request("small", f"Lambda {n}")
            assert outcome.status in ("queued", "rendering", "done")
            keys.append(outcome.key)
        statuses = {key: site.record(key).status for key in keys}  # type: ignore[union-attr]
        assert "queued" in statuses.values(), statuses  # recorded before the answer
        runtime.kill()  # with the events it accepted
        left = [key for key in keys if site.record(key).status != "done"]  # type: ignore[union-attr]
        assert left, "every render finished before the kill: nothing was tested"
        runtime.start()
        deadline = time.monotonic() + BOUND_SECONDS
        while True:
            outcomes = [site.status(key) for key in keys]  # the visitors' polls
            if all(o is not None and o.status == "done" for o in outcomes):
                break
            assert None not in outcomes  # never "unknown_render"
            assert time.monotonic() < deadline, [o.status for o in outcomes if o]
            time.sleep(0.2)
        for key in keys:
            record = site.record(key)
            assert record is not None and record.media is not None
            assert record.attempts <= 2  # queued ones cost nothing; a killed one cost one
    finally:
        site.dispatcher.close()
