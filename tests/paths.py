"""Paths the tests share: the repository, its demo templates and the shared real clip."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_TEMPLATES = REPO / "templates_video"
CLIP = REPO.parent / "shared" / "clips" / "bigbuckbunny.mp4"


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as the site's writers and most editors do: a new file renamed
    over the old one (its folder's stat changes, so the template catalog sees it at once)."""
    staging = path.with_name(f".{path.name}.new")
    staging.write_text(text, encoding="utf-8")
    staging.replace(path)
