"""Take-downs that stick: `loopmark takedown`, `backup` and `restore` as real subprocesses over
the site's own records and media, and the site's checks (share page, /media/, /m/, /r/, a new
render) after an older backup is restored."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from loopmark.app import create_app
from loopmark.composition import setup_backends
from loopmark.service.backup import serving
from loopmark.service.record_cache import KEEP_SECONDS
from tests.site.conftest import MakeApp, render_via_api, site_config, site_services

CAPTION = "Restore me"


def cli(app: Flask, *args: str) -> subprocess.CompletedProcess[str]:
    settings = site_services(app).settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPMARK_")}
    env |= {
        "LOOPMARK_DATA_DIR": str(settings.data_dir),
        "LOOPMARK_TEMPLATES_DIR": str(settings.templates_dir),
        "LOOPMARK_RECORDS": settings.records_url,
        "LOOPMARK_STORAGE": settings.storage_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "loopmark", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr
    (line,) = proc.stdout.strip().splitlines() or proc.stderr.strip().splitlines()[-1:]
    return line


def assert_taken_down(client: FlaskClient, done: dict[str, Any]) -> None:
    key = done["key"]
    assert client.get(f"/s/{key}").status_code == 410
    assert client.get(f"/r/{key}").status_code == 410
    for kind in ("gif_url", "mp4_url", "poster_url"):
        assert client.get(done[kind]).status_code == 410, kind
    for ext in ("gif", "mp4", "jpg"):
        assert client.get(f"/m/{key}.{ext}").status_code == 410, ext
    again = client.post("/api/renders", json={"template": "small", "caption": CAPTION})
    assert again.status_code >= 400, again.get_json()
    assert again.get_json()["error"]["code"] == "render_blocked"


def test_a_take_down_survives_restoring_an_older_backup(make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app()
    client = app.test_client()
    done = render_via_api(client, CAPTION)
    key = done["key"]
    assert client.get(f"/s/{key}").status_code == 200
    with client.get(done["gif_url"]) as gif:
        assert gif.status_code == 200
    backup_dir = tmp_path / "backup"

    backed_up = cli(app, "backup", str(backup_dir))
    assert backed_up.returncode == 0, backed_up.stderr
    assert one_line(backed_up).startswith("backed up 1 render records (0 blocked)")

    taken = cli(app, "takedown", key, "--reason", "after the backup")
    assert taken.returncode == 0, taken.stderr
    assert one_line(taken).startswith(f"taken down {key}")
    time.sleep(KEEP_SECONDS)  # another process: a done record read here is kept that long
    assert_taken_down(client, done)

    # Not under a running server (it holds the lock), unless forced.
    with serving(site_services(app).settings.records_url):
        refused = cli(app, "restore", str(backup_dir))
    assert refused.returncode == 2
    assert "--force" in one_line(refused)

    restored = cli(app, "restore", str(backup_dir))
    assert restored.returncode == 0, restored.stderr
    line = one_line(restored)
    assert line.startswith("restored 1 render records (0 blocked)"), line
    assert line.endswith("1 take-downs in storage, 1 re-applied"), line
    # The site kept running across the restore: the take-down is still in force.
    record = site_services(app).render.record(key)
    assert record is not None and record.status == "blocked"
    assert_taken_down(client, done)


def test_records_restored_without_the_block_still_answer_410(
    make_app: MakeApp, tmp_path: Path, workdir: Path
) -> None:
    app = make_app()
    client = app.test_client()
    done = render_via_api(client, CAPTION)
    key = done["key"]
    database = Path(site_services(app).settings.records_url.removeprefix("sqlite:///"))
    snapshot = tmp_path / "older.db"
    with sqlite3.connect(database) as live, sqlite3.connect(snapshot) as copy:
        live.backup(copy)
    site_services(app).render.take_down(key, reason="test")
    site_services(app).close()
    # Restored by hand, with no re-apply: the records say done again.
    with sqlite3.connect(snapshot) as copy, sqlite3.connect(database) as live:
        copy.backup(live)

    restarted = create_app(site_config(tmp_path, workdir))
    try:
        assert site_services(restarted).render.record(key).status == "done"  # type: ignore[union-attr]
        fresh = restarted.test_client()
        # The blocklist kept in storage answers for the pages and media...
        assert fresh.get(f"/s/{key}").status_code == 410
        assert fresh.get(done["gif_url"]).status_code == 410
        assert fresh.get(f"/m/{key}.gif").status_code == 410
        assert fresh.get(f"/r/{key}").status_code == 410
        # ...and the start (setup) blocks the record again, so it is never rendered again.
        setup_backends(site_services(restarted).settings)
        # That was another set of services (as `loopmark setup` in another process would be):
        # a done record this one read is kept a moment (service.record_cache).
        time.sleep(KEEP_SECONDS)
        assert_taken_down(fresh, done)
    finally:
        site_services(restarted).close()


def test_takedown_of_a_malformed_key_is_one_line(make_app: MakeApp) -> None:
    app = make_app()
    for bad in ("not-a-key", "1" * 24, "a" * 25, "a" * 23 + "/"):
        proc = cli(app, "takedown", bad)
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines()[-1].startswith("loopmark: not a render key")
        assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("loopmark:")]) == 1
