"""One synth of the CDK app per test session (about half a minute), shared by every test."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii's Node runtime otherwise prints a banner about the Node version on every import.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
pytest.importorskip("aws_cdk", reason="the deploy extra is not installed")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from deploy.app import build  # noqa: E402
from deploy.loopmark_stack.config import CONTAINERFILE, REPOSITORY_ROOT  # noqa: E402
from deploy.loopmark_stack.stack import LoopmarkStack  # noqa: E402

CDK_JSON = REPOSITORY_ROOT / "deploy" / "cdk.json"
# Until the images branch lands its Containerfile, the app is synthesized over a stand-in with
# the same two targets (assets are only staged at synth, so its content does not matter).
STAND_IN_CONTAINERFILE = (
    "ARG BASE_IMAGE=scratch\nFROM ${BASE_IMAGE} AS renderer\nFROM ${BASE_IMAGE} AS site\n"
)


@dataclass
class Synth:
    stack: LoopmarkStack
    template: Template
    json: Mapping[str, Any]
    outdir: Path
    seconds: float

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.json["Resources"].items() if r["Type"] == kind}

    def one(self, kind: str) -> dict[str, Any]:
        found = list(self.resources(kind).values())
        assert len(found) == 1, f"{len(found)} {kind}"
        return found[0]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    context = dict(json.loads(CDK_JSON.read_text())["context"])
    if not (REPOSITORY_ROOT / CONTAINERFILE).is_file():
        stand_in = tmp_path_factory.mktemp("image")
        (stand_in / CONTAINERFILE).write_text(STAND_IN_CONTAINERFILE)
        context["imageDirectory"] = str(stand_in)
    started = time.perf_counter()
    app = cdk.App(outdir=str(outdir), context=context)
    stack = build(app)
    app.synth()  # runs cdk-nag: an unacknowledged error fails here
    seconds = time.perf_counter() - started
    template = Template.from_stack(stack)
    yield Synth(stack, template, template.to_json(), outdir, seconds)
