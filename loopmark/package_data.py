"""Files shipped inside the package (fonts, CSS, JS, images), found from its installed location."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
FONTS_DIR = STATIC_DIR / "fonts"
# WOFF2 copies of the caption fonts for the live preview (see static/css/fonts/README.md).
WEB_FONTS_DIR = STATIC_DIR / "css" / "fonts"
# Flask-Babel's catalogues: <language>/LC_MESSAGES/messages.po and the compiled .mo beside it.
TRANSLATIONS_DIR = PACKAGE_DIR / "translations"
