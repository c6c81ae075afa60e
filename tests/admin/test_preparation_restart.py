"""Admin preparations survive a restart. A real process starts an upload's and an edit's
preparation and is killed (SIGKILL) before they finish; the next process (this test's app) reads
what it wrote down in the template folders: the list and the template's page show them as
preparing, the first look resumes them, the upload gets ready and the edit is written, instead
of "preparing" for ever or the admin's saved changes silently lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from loopmark.admin import preparation
from loopmark.admin.preparation import MARKER_FILE, Preparations
from loopmark.service.catalog import DirectoryTemplateCatalog
from tests.admin.interrupted_preparation import TRIM_START
from tests.admin.test_templates import templates_dir, toml_of, wait_ready
from tests.paths import REPO


def interrupt(kind: str, tmp_path: Path, workdir: Path, templates: Path) -> None:
    """Run the admin process that starts a ``kind`` preparation, and kill it once it has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPMARK_")}
    env["PYTHONPATH"] = str(REPO)
    args = [str(tmp_path), str(workdir), str(templates), kind]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.admin.interrupted_preparation", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "started"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def test_preparations_a_restart_interrupted_are_resumed(
    app: Flask, admin_client: FlaskClient, tmp_path: Path, workdir: Path
) -> None:
    templates = templates_dir(app)
    for kind in ("upload", "edit"):
        interrupt(kind, tmp_path, workdir, templates)
    for template_id in ("tiny", "small"):
        marker = json.loads((templates / template_id / MARKER_FILE).read_text())
        assert marker["state"] == "preparing", marker
    assert toml_of(app)["trim"]["start"] != TRIM_START  # the edit is not written yet

    listing = admin_client.get("/admin/templates").get_data(as_text=True)
    assert listing.count('class="badge preparing"') == 2
    page = admin_client.get("/admin/templates/small").get_data(as_text=True)
    assert 'data-template-state="preparing"' in page  # the waiting page, not the old version
    assert wait_ready(admin_client, "tiny") == {"state": "ready", "reason": ""}
    assert wait_ready(admin_client, "small") == {"state": "ready", "reason": ""}
    assert toml_of(app)["trim"]["start"] == TRIM_START  # the saved edit, written at last
    assert toml_of(app, "tiny")["enabled"] is False  # the upload is still a draft
    assert not any((templates / t / MARKER_FILE).exists() for t in ("tiny", "small"))
    editor = admin_client.get("/admin/templates/small").get_data(as_text=True)
    assert "data-admin-preview" in editor


def test_a_failed_preparation_is_said_by_the_next_process(app: Flask, tmp_path: Path) -> None:
    """A failure written down by one process is reported by another (in the page's language
    when the error was marked), once for an edit."""
    folder = templates_dir(app) / "small"
    marker = {
        "state": "failed",
        "edit": {},
        "reason": "This template no longer exists.",
        "message_id": "This template no longer exists.",
        "params": {},
        "owner": "elsewhere:1:x",
    }
    (folder / MARKER_FILE).write_text(json.dumps(marker))
    catalog = app.extensions["loopmark"].templates
    jobs = Preparations(catalog)
    assert jobs.state("small").state == "failed"
    failed = jobs.take_failure("small")
    assert failed is not None and failed.message_id == "This template no longer exists."
    assert jobs.take_failure("small") is None and not (folder / MARKER_FILE).exists()


def test_of_two_processes_resuming_one_preparation_only_the_first_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes read a dead owner's marker at once; the other one claims it and writes
    its own marker before this one renames: this one must not take (and resume) that one."""
    catalog = DirectoryTemplateCatalog(tmp_path / "templates", tmp_path / "prepared")
    (tmp_path / "templates" / "tiny").mkdir(parents=True)
    path = tmp_path / "templates" / "tiny" / MARKER_FILE
    dead = {"state": "preparing", "owner": "gone-host:1:aaaa", "started_at": 1.0}
    theirs = {"state": "preparing", "owner": "other-host:2:bbbb", "started_at": 2.0}
    path.write_text(json.dumps(dead))

    def claimed_meanwhile(marker_path: Path, _marker: dict[str, object]) -> bool:
        marker_path.write_text(json.dumps(theirs))  # the other process won the race
        return False

    monkeypatch.setattr(preparation, "_owner_alive", claimed_meanwhile)
    preparations = Preparations(catalog)
    started: list[str] = []
    monkeypatch.setattr(preparations, "start", lambda template_id, **_: started.append(template_id))
    state = preparations._written_state("tiny")
    assert state is not None and state.state == "preparing"
    assert started == []  # not resumed twice
    assert json.loads(path.read_text()) == theirs  # their marker put back
