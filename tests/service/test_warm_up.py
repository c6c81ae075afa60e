"""The first start: templates are prepared in the background, side by side in child processes,
while the server answers; a template not ready yet is shown as getting ready and its renders are
answered 503 with Retry-After, never a 500 and never a wait behind the preparation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from loopmark.renderer.prepare import PreparedTemplate, is_prepared, prepared_version_folder
from loopmark.service.catalog import DirectoryTemplateCatalog
from tests.moto_server import free_port
from tests.paths import REPO

BOUND_SECONDS = 120.0  # against hangs only


@pytest.fixture
def fresh_templates(tmp_path: Path, small: PreparedTemplate) -> Path:
    """The small template alone, with nothing prepared for it yet."""
    templates = tmp_path / "templates"
    shutil.copytree(small.template.folder, templates / "small")
    return templates


def test_missing_templates_are_prepared_in_child_processes(
    fresh_templates: Path, tmp_path: Path, small: PreparedTemplate
) -> None:
    catalog = DirectoryTemplateCatalog(fresh_templates, tmp_path / "prepared")
    template = catalog.get("small")
    seen_when_listed: list[bool] = []

    def listed() -> None:
        seen_when_listed.append(catalog.warming(template))

    assert catalog.warm_up(workers=2, listed=listed) == ["small"]
    assert seen_when_listed == [True]  # marked before the caller let renders in
    assert not catalog.warming(template)
    assert is_prepared(prepared_version_folder(template, tmp_path / "prepared"))
    prepared = catalog.prepared(template)  # loaded already: from memory
    assert np.array_equal(prepared.frames, small.frames)
    assert np.array_equal(prepared.indices, small.indices)


def test_templates_prepared_on_disk_are_ready_before_listed(
    workdir: Path, small: PreparedTemplate
) -> None:
    catalog = DirectoryTemplateCatalog(workdir / "templates", workdir / "prepared")
    states: list[bool] = []
    ready = catalog.warm_up(
        workers=2, listed=lambda: states.append(catalog.warming(small.template))
    )
    assert ready == ["small"] and states == [False]


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_first_start_answers_before_its_templates_are_ready(
    fresh_templates: Path, tmp_path: Path
) -> None:
    """``loopmark serve`` with an empty prepared folder: the home page and the picker's list
    answer while the template is prepared; /readyz turns 200 once it is ready."""
    port = free_port()
    env = {
        **os.environ,
        "LOOPMARK_DATA_DIR": str(tmp_path / "data"),
        "LOOPMARK_TEMPLATES_DIR": str(fresh_templates),
        "LOOPMARK_DEBUG": "1",
        "PYTHONPATH": str(REPO),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopmark", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + BOUND_SECONDS
        while True:
            try:
                status, _ = _get(port, "/")
                break
            except OSError:
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.05)
        assert status == 200
        status, body = _get(port, "/api/templates")
        assert status == 200
        assert [t["ready"] for t in json.loads(body)] == [False], "prepared before serving?"
        assert _get(port, "/readyz")[0] == 503
        while _get(port, "/readyz")[0] != 200:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        assert [t["ready"] for t in json.loads(_get(port, "/api/templates")[1])] == [True]
        lines = log.read_text()
        assert lines.index("serving on") < lines.index("template small prepared")
    finally:
        proc.terminate()
        proc.wait(timeout=BOUND_SECONDS)
