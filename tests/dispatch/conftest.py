"""Fixtures for dispatch tests: a real lambda-local server on loopback, and boto3's environment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.dispatch.handlers import EVENTS_FILE_ENV
from tests.moto_server import START_TIMEOUT_SECONDS, free_port, stop

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENT_WAIT_SECONDS = 20.0
POLL_SECONDS = 0.02


@dataclass
class LambdaLocal:
    """A running ``lambda-local`` subprocess whose handler writes what it receives to a file."""

    endpoint: str
    port: int
    events_file: Path
    log_file: Path

    def events(self) -> list[dict[str, Any]]:
        """Every invocation the handler completed so far: {event, function, request_id}."""
        if not self.events_file.exists():
            return []
        lines = self.events_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line]

    def wait_for(self, predicate: Any, what: str) -> list[dict[str, Any]]:
        """The recorded invocations once ``predicate(invocation)`` holds for one of them."""
        deadline = time.monotonic() + EVENT_WAIT_SECONDS
        while True:
            events = self.events()
            if any(predicate(e) for e in events):
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"the handler never received {what}; got {events}")
            time.sleep(POLL_SECONDS)

    def drain(self) -> list[dict[str, Any]]:
        """Every invocation sent so far, once all have run: the server runs Event invocations one
        at a time in arrival order (--max-events 1), so a marker event sent now runs last."""
        import boto3

        marker = f"drain-{uuid.uuid4().hex}"
        client = boto3.session.Session().client("lambda", endpoint_url=self.endpoint)
        try:
            client.invoke(
                FunctionName="drain",
                InvocationType="Event",
                Payload=json.dumps({"marker": marker}).encode(),
            )
        finally:
            client.close()
        events = self.wait_for(
            lambda e: isinstance(e["event"], dict) and e["event"].get("marker") == marker,
            f"the drain marker {marker}",
        )
        return [e for e in events if not (isinstance(e["event"], dict) and "marker" in e["event"])]


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"lambda-local did not start: {log_file.read_text(errors='replace')}"
                ) from None
            time.sleep(0.05)


@pytest.fixture(scope="session")
def lambda_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaLocal]:
    """``lambda-local`` as a real subprocess on a free loopback port, running handlers:echo."""
    folder = tmp_path_factory.mktemp("lambda-local")
    events_file = folder / "events.jsonl"
    log_file = folder / "server.log"
    port = free_port()
    env = dict(os.environ)
    env[EVENTS_FILE_ENV] = str(events_file)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    argv = [
        sys.executable,
        "-c",
        "from loopmark.dispatch.lambda_local import main; main()",
        "--port",
        str(port),
        "--handler",
        "tests.dispatch.handlers:echo",
        "--max-events",
        "1",
    ]
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    try:
        _wait_listening(port, proc, log_file)
        yield LambdaLocal(f"http://127.0.0.1:{port}", port, events_file, log_file)
    finally:
        stop(proc)


def set_fake_aws_env(monkeypatch: pytest.MonkeyPatch, lambda_endpoint: str) -> None:
    """What boto3 reads: Lambda at ``lambda_endpoint``, fake credentials, nothing from ~/.aws."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", lambda_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


@pytest.fixture
def lambda_env(lambda_local: LambdaLocal, monkeypatch: pytest.MonkeyPatch) -> LambdaLocal:
    """boto3's environment pointing its Lambda client at the session's lambda-local."""
    set_fake_aws_env(monkeypatch, lambda_local.endpoint)
    return lambda_local
