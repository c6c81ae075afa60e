"""Creating templates from videos, hostile ones included."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from loopmark.errors import BadInput, VideoRejected
from loopmark.renderer.authoring import NewTemplate, add_template, create_template
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.templates import load_template
from tests.renderer import hostile_videos


def test_added_template_has_lower_third_box_and_is_prepared(
    small: PreparedTemplate, workdir: Path
) -> None:
    template = load_template(workdir / "templates", "small")
    assert template.source.name == "source.mp4"
    assert template.width == 160 and template.fps == 8
    box = small.box
    assert box.y >= small.height * 2 // 3 - 1
    assert box.y + box.h <= small.height
    assert box.x > 0 and box.x + box.w < small.width
    assert (small.folder / "preview.mp4").is_file()


def test_a_draft_is_created_unprepared_and_hidden(clip: Path, tmp_path: Path) -> None:
    spec = NewTemplate("draft", clip, start_s=0.5, duration_s=0.5, width=96, fps=4, published=False)
    template = create_template(spec, tmp_path / "t")
    assert template.enabled is False
    assert load_template(tmp_path / "t", "draft").enabled is False
    assert not (tmp_path / "p").exists()  # preparing is the caller's
    published = create_template(NewTemplate("shown", clip, width=96, fps=4), tmp_path / "t")
    assert published.enabled is True and "enabled" not in published.raw


def test_branding_frame_is_composited(clip: Path, tmp_path: Path) -> None:
    frame = tmp_path / "frame.png"
    overlay = Image.new("RGBA", (320, 180), (0, 0, 0, 0))
    overlay.paste((255, 0, 255, 255), (0, 0, 320, 20))  # a magenta band along the top
    overlay.save(frame)
    spec = NewTemplate("branded", clip, start_s=0.5, duration_s=0.5, width=160, fps=4, frame=frame)
    prepared = add_template(spec, tmp_path / "t", tmp_path / "p")
    top = prepared.frames[:, :6].reshape(-1, 3)
    assert (top == (255, 0, 255)).all()
    assert not (prepared.frames[:, 40:].reshape(-1, 3) == (255, 0, 255)).all(axis=1).any()


@pytest.mark.parametrize(
    "make",
    [
        hostile_videos.hls_playlist,
        hostile_videos.ffconcat_script,
        hostile_videos.gif_screen_bomb,
        hostile_videos.text_file,
    ],
)
def test_hostile_videos_are_refused_and_leave_nothing(
    make: Callable[[Path], Path], tmp_path: Path
) -> None:
    video = make(tmp_path)
    with pytest.raises(VideoRejected):
        add_template(NewTemplate("bad", video), tmp_path / "t", tmp_path / "p")
    assert not (tmp_path / "t" / "bad").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"template_id": "Bad Id"}, "template id"),
        ({"width": 4000}, "--width"),
        ({"fps": 60}, "--fps"),
        ({"start_s": 99.0}, "--start"),
        ({"duration_s": 30.0}, "--duration"),
    ],
)
def test_bad_options_are_refused(
    clip: Path, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    # Any: each case sets one field, of that field's own type, to a value it refuses.
    fields: dict[str, Any] = {"template_id": "ok", "video": clip, **changes}
    with pytest.raises(BadInput, match=message):
        add_template(NewTemplate(**fields), tmp_path / "t", tmp_path / "p")


def test_a_frame_that_is_not_a_png_is_refused(clip: Path, tmp_path: Path) -> None:
    fake = tmp_path / "frame.png"
    fake.write_bytes(b"GIF89a not really")
    with pytest.raises(BadInput, match="frame"):
        add_template(NewTemplate("x", clip, frame=fake), tmp_path / "t", tmp_path / "p")
    assert not (tmp_path / "t" / "x").exists()


def test_an_existing_id_is_refused(small: PreparedTemplate, clip: Path, workdir: Path) -> None:
    with pytest.raises(BadInput, match="already exists"):
        add_template(NewTemplate("small", clip), workdir / "templates", workdir / "prepared")
