"""Preparation's folder naming (one rule for the cache folder and the site's template URLs), and
its artifacts: checksummed, read into memory, prepared again when bad."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from loopmark.brand import DEMO_BRAND_FILE
from loopmark.errors import TemplateInvalid
from loopmark.renderer.prepare import (
    FRAME_CORNER_SHARE,
    MANIFEST_VERSION,
    PREPARE_VERSION,
    PreparedTemplate,
    frame_overlay,
    prepare_template,
    prepared_folder_name,
)
from loopmark.renderer.render import RenderSettings, render
from loopmark.renderer.templates import load_template
from tests.pixels import pixel


def test_the_folder_name_joins_template_and_preparation_versions() -> None:
    assert prepared_folder_name("b7cf888cfd17167b") == f"b7cf888cfd17167b-p{PREPARE_VERSION}"
    assert prepared_folder_name("b7cf888cfd17167b", 3) == "b7cf888cfd17167b-p3"


def test_prepared_artifacts_live_in_the_named_folder(small: PreparedTemplate) -> None:
    assert small.folder.name == prepared_folder_name(small.template.version)
    assert small.folder.parent.name == small.template.id


# --- trustworthy artifacts ------------------------------------------------------------------------


@pytest.fixture
def copied(small: PreparedTemplate, tmp_path: Path) -> Path:
    """A private copy of the small template's prepared folder (its own prepared_dir)."""
    prepared_dir = tmp_path / "prepared"
    shutil.copytree(small.folder, prepared_dir / small.template.id / small.folder.name)
    return prepared_dir


def gif_of(prepared: PreparedTemplate) -> bytes:
    return render(prepared, "Trust but verify").gif


def test_the_manifest_has_a_checksum_of_every_file(small: PreparedTemplate) -> None:
    meta = json.loads((small.folder / "meta.json").read_text())
    assert meta["manifest"] == MANIFEST_VERSION
    files = {p.name for p in small.folder.iterdir()} - {"meta.json"}
    assert set(meta["checksums"]) == files
    for name, digest in meta["checksums"].items():
        assert hashlib.sha256((small.folder / name).read_bytes()).hexdigest() == digest


def test_frames_are_in_memory_read_only_not_mapped(small: PreparedTemplate) -> None:
    for array in (small.frames, small.indices, small.palette, small.lut):
        owner: Any = array
        while isinstance(owner, np.ndarray):
            assert not isinstance(owner, np.memmap)
            owner = owner.base
        assert isinstance(owner, bytes)  # the file's bytes, read once and checked
        assert not array.flags.writeable


@pytest.mark.parametrize("name", ["frames.npy", "indices.npy", "lut.npy", "poster.jpg"])
def test_an_altered_artifact_is_deleted_and_prepared_again(
    small: PreparedTemplate, copied: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = copied / small.template.id / small.folder.name / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, deep in the pixels
    path.write_bytes(bytes(data))
    rebuilt = prepare_template(small.template, copied)
    assert path.read_bytes() != bytes(data)
    assert "does not match its checksum" in caplog.text
    assert gif_of(rebuilt) == gif_of(small)


def test_a_truncated_artifact_or_manifest_is_prepared_again(
    small: PreparedTemplate, copied: Path
) -> None:
    folder = copied / small.template.id / small.folder.name
    os.truncate(folder / "frames.npy", 4096)
    assert gif_of(prepare_template(small.template, copied)) == gif_of(small)
    os.truncate(folder / "meta.json", 10)
    assert gif_of(prepare_template(small.template, copied)) == gif_of(small)


def test_an_older_manifest_without_checksums_is_prepared_again(
    small: PreparedTemplate, copied: Path
) -> None:
    manifest = copied / small.template.id / small.folder.name / "meta.json"
    meta = json.loads(manifest.read_text())
    del meta["manifest"], meta["checksums"]
    manifest.write_text(json.dumps(meta))
    prepared = prepare_template(small.template, copied)
    assert json.loads(manifest.read_text())["manifest"] == MANIFEST_VERSION
    assert prepared.folder == manifest.parent and gif_of(prepared) == gif_of(small)


def test_a_bad_artifact_that_cannot_be_deleted_is_prepared_in_the_spill_folder(
    small: PreparedTemplate, copied: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copied / small.template.id / small.folder.name
    os.truncate(folder / "indices.npy", 100)
    real_rename = os.rename

    def rename(source: Any, target: Any) -> None:  # the baked folder is read-only
        if Path(source) == folder:
            raise PermissionError(13, "Read-only file system", str(source))
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename)
    prepared = prepare_template(small.template, copied, spill_dir=tmp_path / "spill")
    assert prepared.folder.is_relative_to(tmp_path / "spill")
    assert gif_of(prepared) == gif_of(small)
    with pytest.raises(TemplateInvalid, match="cannot be written"):
        prepare_template(small.template, copied)  # and nowhere to spill: refused, not served


TRUNCATE_WHILE_SERVING = """
import os, sys
from pathlib import Path
from loopmark.renderer.prepare import prepare_template
from loopmark.renderer.render import render
from loopmark.renderer.templates import load_template
template = load_template(Path(sys.argv[1]), "small")
prepared = prepare_template(template, Path(sys.argv[2]))
for name in ("frames.npy", "indices.npy"):
    os.truncate(prepared.folder / name, 0)
print(len(render(prepared, "Still here").gif))
"""


def test_a_file_truncated_under_a_loaded_template_cannot_kill_the_process(
    small: PreparedTemplate, copied: Path
) -> None:
    # In a child process: memory-mapped frames would die of SIGBUS here (exit -7).
    done = subprocess.run(
        [sys.executable, "-c", TRUNCATE_WHILE_SERVING, str(small.template.folder.parent), copied],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) > 0
    # And the next start rebuilds the truncated files rather than refusing to start.
    assert gif_of(prepare_template(small.template, copied)) == gif_of(small)


# --- the stabilise distance: tuned, recorded, overridable -----------------------------------------


def test_the_tuned_distance_is_recorded_and_renders_use_it(small: PreparedTemplate) -> None:
    meta = json.loads((small.folder / "meta.json").read_text())
    assert meta["stabilise_tuned"] is True
    assert meta["stabilise_distance"] == small.stabilise_distance
    assert render(small, "Tuned").key == render(small, "Tuned", settings=RenderSettings()).key
    other = RenderSettings(stabilise_distance=small.stabilise_distance + 4)
    assert render(small, "Tuned", settings=other).key != render(small, "Tuned").key


def test_template_toml_overrides_the_distance(small: PreparedTemplate, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(small.template.folder, templates / "small")
    toml = templates / "small" / "template.toml"
    toml.write_text(toml.read_text().replace("[output]", "[output]\nstabilise_distance = 0", 1))
    template = load_template(templates, "small")
    assert template.stabilise_distance == 0.0
    prepared = prepare_template(template, tmp_path / "prepared")
    meta = json.loads((prepared.folder / "meta.json").read_text())
    assert (meta["stabilise_distance"], meta["stabilise_tuned"]) == (0.0, False)
    assert prepared.stabilise_distance == 0.0
    # Nothing is kept at distance 0: more pixels change from frame to frame than when tuned.
    changes = np.count_nonzero(np.diff(prepared.indices.astype(int), axis=0))
    assert changes > np.count_nonzero(np.diff(small.indices.astype(int), axis=0))
    assert render(prepared, "Exact").gif != render(small, "Exact").gif


def test_a_frame_keeps_its_corners_on_a_clip_of_another_shape() -> None:
    frame_png = DEMO_BRAND_FILE.parent / "frame.png"  # 960×540, a badge in its top-left corner
    with Image.open(frame_png) as img:
        frame = img.convert("RGBA")
    # Portrait: the corners scaled evenly to the short side, not squashed to the width.
    portrait = frame_overlay(frame_png, 180, 320, keep_corners=True)
    assert portrait.size == (180, 320)
    corner = int(540 * FRAME_CORNER_SHARE)
    out = round(corner * 180 / 540)
    even = frame.crop((0, 0, corner, corner)).resize((out, out), Image.Resampling.LANCZOS)
    assert portrait.crop((0, 0, out, out)).tobytes() == even.tobytes()
    bottom_right = frame.crop((960 - corner, 540 - corner, 960, 540))
    bottom_right = bottom_right.resize((out, out), Image.Resampling.LANCZOS)
    assert portrait.crop((180 - out, 320 - out, 180, 320)).tobytes() == bottom_right.tobytes()
    # The middle stays see-through, the border goes all round.
    assert pixel(portrait, (90, 160))[3] == 0
    assert all(pixel(portrait, xy)[3] == 255 for xy in ((0, 160), (179, 160), (90, 319)))
    # The frame's own shape (a template's case, or a landscape clip): plainly scaled.
    stretched = frame.resize((480, 270), Image.Resampling.LANCZOS)
    for keep in (False, True):
        assert frame_overlay(frame_png, 480, 270, keep_corners=keep).tobytes() == (
            stretched.tobytes()
        )
    # A template's frame is stretched whatever the shape (its frame is drawn for it).
    assert (
        frame_overlay(frame_png, 180, 320).tobytes()
        == frame.resize((180, 320), Image.Resampling.LANCZOS).tobytes()
    )
