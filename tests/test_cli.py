"""The command line as scripts use it: a real subprocess, exit codes, one-line errors, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.paths import CLIP, DEMO_TEMPLATES
from tests.renderer import hostile_videos


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopmark", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "LOOPMARK_DATA_DIR": str(tmp_path / "var"),
        "LOOPMARK_TEMPLATES_DIR": str(tmp_path / "templates"),
    }


def assert_one_line_error(proc: subprocess.CompletedProcess[str], status: int = 2) -> str:
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_add_list_and_render_a_template(env: dict[str, str], tmp_path: Path) -> None:
    options = ["--start", "1", "--duration", "1", "--width", "160", "--fps", "6", "--name", "Clip"]
    added = run("templates", "add", "clip", "--video", str(CLIP), *options, env=env)
    assert added.returncode == 0, added.stderr
    listed = json.loads(run("templates", "list", "--json", env=env).stdout)
    assert [t["id"] for t in listed] == ["clip"]
    assert listed[0]["name"] == "Clip" and listed[0]["fps"] == 6

    out = tmp_path / "out" / "hello.gif"
    rendered = run("render", "clip", "Hello, world", "-o", str(out), "--json", env=env)
    assert rendered.returncode == 0, rendered.stderr
    summary = json.loads(rendered.stdout)
    assert {"key", "gif", "mp4", "poster", "bytes", "frames", "width", "height", "seconds"} <= set(
        summary
    )
    assert summary["gif"] == str(out) and out.read_bytes()[:6] == b"GIF89a"
    assert Path(summary["mp4"]).stat().st_size > 0
    assert Path(summary["poster"]).read_bytes()[:2] == b"\xff\xd8"
    assert summary["bytes"] == out.stat().st_size
    assert (summary["frames"], summary["width"], summary["height"]) == (6, 160, 90)
    # The demo brand's GIF size budget applied, and the GIF was within it.
    budget = summary["budget"]
    assert (budget["max_bytes"], budget["fits"], budget["stepped"]) == (8_000_000, True, False)
    assert budget["bytes"] == summary["bytes"]


def test_templates_list_says_draft_as_the_admin_does(env: dict[str, str]) -> None:
    """A template hidden from visitors is a "draft" in the list, as in the admin; --json keeps
    ``enabled`` (scripts read it) and says the same word in ``state``."""
    for template_id in ("shown", "hidden"):
        options = ["--duration", "1", "--width", "160", "--fps", "6"]
        added = run("templates", "add", template_id, "--video", str(CLIP), *options, env=env)
        assert added.returncode == 0, added.stderr
    toml = Path(env["LOOPMARK_TEMPLATES_DIR"]) / "hidden" / "template.toml"
    toml.write_text("enabled = false\n" + toml.read_text(encoding="utf-8"), encoding="utf-8")
    lines = run("templates", "list", env=env).stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["hidden", "shown"]
    assert lines[0].endswith("(draft)") and not lines[1].endswith(")")
    assert "disabled" not in "".join(lines)
    listed = json.loads(run("templates", "list", "--json", env=env).stdout)
    assert [(t["id"], t["enabled"], t["state"]) for t in listed] == [
        ("hidden", False, "draft"),
        ("shown", True, "published"),
    ]


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_templates_prepare_fills_the_prepared_dir_once(env: dict[str, str], tmp_path: Path) -> None:
    options = ["--duration", "1", "--width", "160", "--fps", "6"]
    added = run("templates", "add", "clip", "--video", str(CLIP), *options, env=env)
    assert added.returncode == 0, added.stderr
    baked = tmp_path / "baked"
    env = {**env, "LOOPMARK_PREPARED_DIR": str(baked)}

    prepared = run("templates", "prepare", env=env)
    assert prepared.returncode == 0, prepared.stderr
    (line,) = prepared.stdout.splitlines()
    assert line.startswith("clip ") and "prepared in" in line
    folder = Path(line.rsplit(": ", 1)[1])
    assert folder.parent == baked / "clip" and (folder / "meta.json").is_file()

    # Complete artifacts are only read: preparing again and rendering write nothing there.
    before = snapshot(baked)
    again = run("templates", "prepare", "clip", env=env)
    assert again.returncode == 0 and "already prepared" in again.stdout
    rendered = run("render", "clip", "Hi", "-o", str(tmp_path / "hi.gif"), env=env)
    assert rendered.returncode == 0, rendered.stderr
    assert snapshot(baked) == before


def test_templates_prepare_an_unknown_id_exits_2(env: dict[str, str]) -> None:
    demo = {**env, "LOOPMARK_TEMPLATES_DIR": str(DEMO_TEMPLATES)}
    line = assert_one_line_error(run("templates", "prepare", "wake-up", "missing", env=demo))
    assert "missing" in line
    assert not (Path(env["LOOPMARK_DATA_DIR"]) / "prepared").exists()  # nothing prepared


def test_unknown_template_exits_2(env: dict[str, str]) -> None:
    line = assert_one_line_error(run("render", "missing", "Hi", env=env))
    assert "unknown template" in line


def test_rejected_caption_exits_2(env: dict[str, str]) -> None:
    demo = {**env, "LOOPMARK_TEMPLATES_DIR": str(DEMO_TEMPLATES)}
    line = assert_one_line_error(run("render", "wake-up", "f\u200bu\u200bc\u200bk", env=demo))
    assert "invisible" in line


def test_usage_errors_exit_2_in_one_line(env: dict[str, str]) -> None:
    assert_one_line_error(run("render", env=env))
    assert_one_line_error(run("templates", "add", "x", env=env))
    assert_one_line_error(run("templates", "add", "x", "--video", str(CLIP), "--fps", "many",
                              env=env))  # fmt: skip


@pytest.mark.parametrize(
    "make",
    [
        hostile_videos.hls_playlist,
        hostile_videos.ffconcat_script,
        hostile_videos.ten_hour_video,
        hostile_videos.huge_frame_video,
        hostile_videos.gif_screen_bomb,
    ],
)
def test_hostile_videos_exit_2_with_a_reason(
    make: Callable[[Path], Path], env: dict[str, str], tmp_path: Path
) -> None:
    video = make(tmp_path)
    line = assert_one_line_error(run("templates", "add", "bad", "--video", str(video), env=env))
    assert line.startswith("loopmark: ")
    assert not (Path(env["LOOPMARK_TEMPLATES_DIR"]) / "bad").exists()


def test_maintenance_commands_answer_in_one_line(env: dict[str, str], tmp_path: Path) -> None:
    assert run("setup", env=env).returncode == 0
    gc = run("gc", "--dry-run", env=env)
    assert gc.returncode == 0, gc.stderr
    assert gc.stdout.startswith("gc (90 days): would delete 0 renders")
    assert len(gc.stdout.splitlines()) == 1
    assert "gc (7 days)" in run("gc", "--days", "7", env=env).stdout
    assert "(5 days)" in run("gc", env={**env, "LOOPMARK_RETENTION_DAYS": "5"}).stdout
    assert_one_line_error(run("gc", "--days", "0", env=env))
    unlocked = run("admin", "unlock", "ana", env=env)
    assert unlocked.returncode == 0, unlocked.stderr
    assert unlocked.stdout.startswith("unlocked ana: 0 failed logins")
    assert "user name" in assert_one_line_error(run("admin", "unlock", "Not A Name", env=env))
    assert "not a render key" in assert_one_line_error(run("takedown", "../etc", env=env))
    missing = assert_one_line_error(run("restore", str(tmp_path / "nothing"), env=env))
    assert "no backup" in missing


def test_backup_and_restore_on_dynamodb_point_to_pitr(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "LOOPMARK_RECORDS": "dynamodb://loopmark-test"}
    for command in ("backup", "restore"):
        line = assert_one_line_error(run(command, str(tmp_path / "b"), env=env))
        assert "point-in-time recovery" in line
    assert not (tmp_path / "b").exists()
