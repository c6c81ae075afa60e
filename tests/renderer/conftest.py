"""Renderer fixtures: a small real template cut from Big Buck Bunny, prepared once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopmark.renderer.authoring import NewTemplate, add_template
from loopmark.renderer.prepare import PreparedTemplate

CLIP = Path(__file__).resolve().parents[3] / "shared" / "clips" / "bigbuckbunny.mp4"
REPO = Path(__file__).resolve().parents[2]
DEMO_TEMPLATES = REPO / "templates_video"


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
