"""Pinned output: a render's key and GIF bytes must not change when code is reorganised.

The values were taken on main before the house-in-order refactor (issue 8). A change to them
is a change of behaviour: it needs a new RENDERER_VERSION or PREPARE_VERSION, not a new pin.
"""

from __future__ import annotations

import hashlib

import pytest

from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.render import render

PINNED = [
    (
        "Hello, world!",
        "o5vikvlqfvrmytpwrvgbpnkh",
        "917df4a17c4496b2edbbc06b9c2f7ae6b211c6ad7c56b412f8e3d13a3838a4a0",
    ),
    # Right-to-left with an emoji: bidi, font fallback and colour glyphs all take part.
    (
        "مرحبا 👋 Hop",
        "34xrdgiwn5leq62nkjnk5rnc",
        "d01feb42e35cc7aa3b05e22698c9cb0bcba4176ef9c6c989687160d416ff1376",
    ),
    (
        "Müller & Łukasz",
        "fondb2xvpsltldolewhep747",
        "f1ddacb55ab1d8443bf0fc652933cf1804e0ac2fdbabf77dd88f1660b29d6337",
    ),
]


def test_the_small_template_version_is_pinned(small: PreparedTemplate) -> None:
    assert small.template.version == "b7cf888cfd17167b"


@pytest.mark.parametrize(("caption", "key", "gif_sha256"), PINNED)
def test_key_and_gif_bytes_are_pinned(
    small: PreparedTemplate, caption: str, key: str, gif_sha256: str
) -> None:
    result = render(small, caption)
    assert result.key == key
    assert hashlib.sha256(result.gif).hexdigest() == gif_sha256
