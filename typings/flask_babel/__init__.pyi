# Flask-Babel 4 ships no type information: the parts Loopmark uses (typings/README.md).
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from babel import Locale
from babel.support import NullTranslations, Translations
from flask import Flask

# What it returns goes through babel's Locale.parse, which takes a Locale as it is.
LocaleSelector = Callable[[], str | Locale | None]

class LazyString:
    def __str__(self) -> str: ...
    def __html__(self) -> str: ...

class Babel:
    def __init__(
        self,
        app: Flask | None = ...,
        date_formats: dict[str, str | None] | None = ...,
        configure_jinja: bool = ...,
        *,
        locale_selector: LocaleSelector | None = ...,
        default_locale: str = ...,
        default_translation_directories: str = ...,
    ) -> None: ...
    def init_app(
        self,
        app: Flask,
        default_locale: str = ...,
        default_domain: str = ...,
        default_translation_directories: str = ...,
        default_timezone: str = ...,
        locale_selector: LocaleSelector | None = ...,
        timezone_selector: Callable[[], str | None] | None = ...,
    ) -> None: ...

def get_locale() -> Locale | None: ...
def get_translations() -> Translations | NullTranslations: ...
def refresh() -> None: ...
@contextmanager
def force_locale(locale: str) -> Iterator[None]: ...
def gettext(string: str, **variables: object) -> str: ...
def ngettext(singular: str, plural: str, num: int, **variables: object) -> str: ...
def lazy_gettext(string: str, **variables: object) -> LazyString: ...
def lazy_ngettext(singular: str, plural: str, num: int, **variables: object) -> LazyString: ...
def format_decimal(number: float, format: str | None = ...) -> str: ...
def format_percent(number: float, format: str | None = ...) -> str: ...
