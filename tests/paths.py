"""Paths the tests share: the repository, its demo templates and the shared real clip."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_TEMPLATES = REPO / "templates_video"
CLIP = REPO.parent / "shared" / "clips" / "bigbuckbunny.mp4"
