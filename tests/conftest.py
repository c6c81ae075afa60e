"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopmark.renderer.authoring import NewTemplate, add_template
from loopmark.renderer.prepare import PreparedTemplate
from tests.moto_server import reset, serial_moto_server
from tests.paths import CLIP


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session (real HTTP on loopback), answering one request at a time:
    DynamoDB applies conditional writes to one item one at a time, and the render service relies
    on it everywhere (a worker's claim races the request's "queued"), which moto's threaded
    server does not do."""
    with serial_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean moto server and the environment boto3 reads to reach it. Yields the endpoint."""
    reset(moto_endpoint)
    use_aws_endpoint(monkeypatch, moto_endpoint)
    return moto_endpoint


def use_aws_endpoint(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """The environment boto3 reads, pointed at ``endpoint`` (a moto server) with test keys."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="session")
def clip() -> Path:
    if not CLIP.is_file():
        pytest.fail(f"the shared clip is missing: {CLIP}")
    return CLIP


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("renderer")


@pytest.fixture(scope="session")
def small(clip: Path, workdir: Path) -> PreparedTemplate:
    """A 160-pixel, 8 fps, one-second template: real footage, quick to prepare and render."""
    spec = NewTemplate(
        template_id="small", video=clip, start_s=1.0, duration_s=1.0, width=160, fps=8
    )
    return add_template(spec, workdir / "templates", workdir / "prepared")
