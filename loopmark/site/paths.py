"""Where the site's files live: the repository's static/ folder and the package's templates."""

from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
STATIC_DIR = REPO_DIR / "static"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
FONTS_DIR = STATIC_DIR / "fonts"
WEB_FONTS_DIR = STATIC_DIR / "css" / "fonts"
