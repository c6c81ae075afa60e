"""The AWS path over the wire: S3 and DynamoDB on moto's server, renders on Lambda through
`loopmark lambda-local`, templates pushed to the bucket. Nothing is patched in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest

from loopmark.composition import build_render_service
from loopmark.config import Settings
from loopmark.dispatch.base import RenderJob
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.render import render_key
from loopmark.service.render_service import RenderOutcome, RenderService, media_keys
from tests.moto_server import free_port, stop
from tests.paths import REPO
from tests.service.conftest import set_up_aws_site

if TYPE_CHECKING:
    from mypy_boto3_lambda.literals import InvocationTypeType

BUCKET = "loopmark-media"
FUNCTION = "loopmark-render"
BOUND_SECONDS = 60.0  # against hangs only


def aws_env(tmp: Path) -> dict[str, str]:
    return {
        "LOOPMARK_DATA_DIR": str(tmp),
        "LOOPMARK_STORAGE": f"s3://{BUCKET}/site",
        "LOOPMARK_RECORDS": "dynamodb://loopmark-renders",
        "LOOPMARK_DISPATCH": f"lambda://{FUNCTION}",
        "LOOPMARK_TEMPLATES_SOURCE": "storage",
    }


@pytest.fixture
def lambda_endpoint(
    aws: str,
    tmp_path: Path,
    workdir: Path,
    small: PreparedTemplate,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """Backends set up, the small template pushed, and lambda-local running the real handler."""
    set_up_aws_site(aws_env(tmp_path / "site"), workdir / "templates", workdir / "prepared")
    port = free_port()
    log_file = (tmp_path / "lambda-local.log").open("wb")
    env = {**os.environ, **aws_env(tmp_path / "lambda"), "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "loopmark", "lambda-local", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + BOUND_SECONDS
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
        except urllib.error.HTTPError:
            break  # it answers (404 for /): up
        except OSError:
            assert server.poll() is None, "lambda-local exited"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        else:
            break
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", endpoint)
    try:
        yield endpoint
    finally:
        stop(server)
        log_file.close()
        print((tmp_path / "lambda-local.log").read_text(errors="replace")[-3000:])


@pytest.fixture
def site(lambda_endpoint: str, tmp_path: Path) -> Iterator[RenderService]:
    service = build_render_service(Settings.from_env(aws_env(tmp_path / "site")))
    yield service
    service.dispatcher.close()


def wait_done(service: RenderService, key: str) -> None:
    deadline = time.monotonic() + BOUND_SECONDS
    while (outcome := service.status(key)) is None or outcome.status != "done":
        assert time.monotonic() < deadline, outcome
        time.sleep(0.1)


def test_render_on_lambda_lands_in_s3_and_dynamodb(site: RenderService) -> None:
    outcome = site.request("small", "Hello from Lambda", wait_s=BOUND_SECONDS)
    assert outcome.status == "done", (outcome, site.records.get(outcome.key))
    assert outcome.media["frames"] == 8
    s3 = boto3.client("s3")
    gif = s3.get_object(Bucket=BUCKET, Key=f"site/{media_keys(outcome.key)['gif']}")
    assert gif["Body"].read()[:6] == b"GIF89a"
    assert gif["CacheControl"] == "public, max-age=31536000, immutable"
    with urllib.request.urlopen(outcome.urls["gif"], timeout=10) as response:  # presigned
        assert response.read()[:6] == b"GIF89a"
    assert site.request("small", "Hello from Lambda").status == "done"
    assert site.metrics.cache_hits._value.get() == 1


def test_a_lambda_render_reports_each_rendition_as_it_lands(site: RenderService) -> None:
    """On Lambda, DynamoDB and S3 too, the GIF is recorded before the MP4: every poll sees the
    renditions in the order they land, with the URLs of those stored only."""
    outcome: RenderOutcome | None = site.request("small", "Renditions on Lambda")
    order = ["gif", "poster", "thumbnail", "mp4", "card"]
    seen: list[tuple[str, ...]] = []
    deadline = time.monotonic() + BOUND_SECONDS
    while outcome is None or outcome.status != "done":
        assert time.monotonic() < deadline, seen
        if outcome is not None:
            stored = tuple(kind for kind in order if outcome.renditions[kind])
            assert stored == tuple(order[: len(stored)]), stored  # a prefix: in order
            assert set(outcome.urls) == set(stored)
            seen.append(stored)
        time.sleep(0.02)
        outcome = site.status(outcome.key if outcome else "")
    assert outcome.renditions == dict.fromkeys(order, True)
    record = site.records.get(outcome.key)
    assert record is not None and record.media is not None
    assert record.media["mp4_bytes"] > 0 and record.media["card_bytes"] > 0


def test_duplicate_lambda_events_render_once(site: RenderService) -> None:
    template = site.catalog.get("small")
    caption = "Delivered twice"
    key = render_key(template, caption)
    event = RenderJob(key, "small", caption).to_event()
    client = boto3.client("lambda")

    def invoke(kind: InvocationTypeType) -> int:
        response = client.invoke(
            FunctionName=FUNCTION, InvocationType=kind, Payload=json.dumps(event).encode()
        )
        return int(response["StatusCode"])

    with ThreadPoolExecutor(4) as pool:
        kinds: list[InvocationTypeType] = ["Event", "Event", "RequestResponse", "RequestResponse"]
        codes = list(pool.map(invoke, kinds))
    assert codes.count(202) == 2 and codes.count(200) == 2
    wait_done(site, key)
    record = site.records.get(key)
    assert record is not None and record.attempts == 1
    # Delivered again after it is done: still one render, and the handler says so.
    payload = client.invoke(FunctionName=FUNCTION, Payload=json.dumps(event).encode())["Payload"]
    assert json.loads(payload.read()) == {"ok": True, "key": event["key"], "status": "done"}
    record = site.records.get(key)
    assert record is not None and record.attempts == 1


def test_a_junk_event_is_answered_not_retried(site: RenderService) -> None:
    client = boto3.client("lambda")
    response = client.invoke(FunctionName=FUNCTION, Payload=b'{"key": "../../etc"}')
    # keys(): boto3-stubs mark every key of the answer required, so mypy would take the key as
    # always there; Lambda leaves FunctionError out when the function did not fail.
    assert "FunctionError" not in response.keys()
    body = json.loads(response["Payload"].read())
    assert body["ok"] is False and body["error"]["code"]


def test_a_lambda_render_reports_its_real_progress_and_a_measured_eta(site: RenderService) -> None:
    # One render on Lambda: the handler measures it, and the site learns the time from its record.
    done = site.request("small", "Measured on Lambda", wait_s=BOUND_SECONDS)
    assert done.status == "done", done
    wait_done(site, done.key)
    measured = site.record(done.key)
    assert measured is not None and measured.media is not None
    seconds = measured.media["render_seconds"]
    assert 0 < seconds < BOUND_SECONDS
    # Another render under way on a Lambda worker, 40 % through: not "queued 0 %".
    template = site.catalog.get("small")
    caption = "Under way on Lambda"
    key = render_key(template, caption)
    records = site.records
    assert records.claim_lease(
        key, owner="lambda-worker", template_id="small", caption=caption, lease_seconds=30
    )
    assert records.extend_lease(key, owner="lambda-worker", lease_seconds=30, progress=0.4)
    outcome = site.status(key)
    assert outcome is not None and outcome.status == "rendering"
    assert outcome.progress == pytest.approx(0.4)
    assert outcome.eta_seconds == pytest.approx(seconds * 0.6, abs=0.01)


def test_a_crashed_lambda_render_is_taken_over_within_its_lease(
    lambda_endpoint: str, tmp_path: Path
) -> None:
    """A worker that died mid-render stops renewing its lease; the next poll after it lapses
    dispatches the render again, and exactly one worker takes it over."""
    lease_s = 2
    env = {**aws_env(tmp_path / "site"), "LOOPMARK_LEASE_SECONDS": str(lease_s)}
    site = build_render_service(Settings.from_env(env))
    try:
        template = site.catalog.get("small")
        caption = "Died mid-render"
        key = render_key(template, caption)
        crashed = site.records.claim_lease(
            key, owner="dead-worker", template_id="small", caption=caption, lease_seconds=lease_s
        )
        assert crashed is not None
        # The site had sent the job (the worker that took it died): the dispatcher remembers
        # the submit, but the record is the truth.
        site.dispatcher.submit(RenderJob(key, "small", caption))
        started = time.monotonic()
        polls: list[str] = []
        while (outcome := site.status(key)) is None or outcome.status != "done":
            polls.append(outcome.status if outcome else "unknown")
            assert time.monotonic() - started < BOUND_SECONDS, polls
            time.sleep(0.2)
        # Dispatched again as soon as the lease lapsed: a poll later the render is under way.
        assert time.monotonic() - started < lease_s + 15
        assert polls[0] == "rendering"
        record = site.record(key)
        assert record is not None and record.attempts == 2 and record.owner != "dead-worker"
    finally:
        site.dispatcher.close()
