"""Where the site's files live: the package's static/ folder and the site's Jinja templates."""

from pathlib import Path

from loopmark.package_data import FONTS_DIR, STATIC_DIR, WEB_FONTS_DIR

__all__ = ["FONTS_DIR", "STATIC_DIR", "TEMPLATES_DIR", "WEB_FONTS_DIR"]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
