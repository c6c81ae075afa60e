"""The translation catalogues outside a request: the words the service draws into images (a
share card's brand line), in the render's language.

The pages say their words through Flask-Babel (web.i18n); a share card is drawn once per render,
off any request, and stored under the render's key, so its words are looked up here, in the same
compiled catalogues (loopmark/translations), by language code. English, or a language without a
catalogue, is the text as written.
"""

from __future__ import annotations

import functools

from babel.support import NullTranslations, Translations

from loopmark.package_data import TRANSLATIONS_DIR


def translate(message: str, language: str) -> str:
    """``message`` in ``language`` (as written when the catalogue lacks it)."""
    return _catalogue(language).gettext(message)


@functools.lru_cache(maxsize=16)
def _catalogue(language: str) -> NullTranslations:
    return Translations.load(str(TRANSLATIONS_DIR), [language])
