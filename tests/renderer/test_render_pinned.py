"""Pinned output: a render's key and GIF bytes must not change when code is reorganised.

The values were taken on main before the house-in-order refactor (issue 8). A change to them
is a change of behaviour: it needs a new RENDERER_VERSION or PREPARE_VERSION, not a new pin.
"""

from __future__ import annotations

import hashlib

import pytest

from loopmark.renderer.prepare import PreparedTemplate, prepare_template
from loopmark.renderer.render import render
from loopmark.renderer.templates import load_template
from tests.paths import DEMO_TEMPLATES

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


# --- demo templates at full size ------------------------------------------------------------------
# Two demo templates (a forward loop and a boomerang, 480 px) × an emoji caption and a
# right-to-left one: the renderer's hot paths (compose, look-up, stabilise, LZW) at real size.
# The pins change only with RENDERER_VERSION or PREPARE_VERSION (and the demo templates' files).
DEMO_PINNED = [
    (
        "wake-up",
        "Rise and hop 🐰☕",
        "qnlfv7se56t5kqgtspax7pbw",
        "52c57a064341fde9e12c35361b2864989bc8b39caa926a4b75e4d3a15289b4b6",
    ),
    (
        "wake-up",
        "صباح الخير يا Hop",
        "d4kv3ennragrarbu2gbq647f",
        "fae16d32fe880291c45a3fa8f06521b364ce2726bf87f041da53aad242fa4129",
    ),
    (
        "big-stretch",
        "Stretch 🙆 mode ON 🐰",
        "n7zndpyzqsfx5sttgqehtmqf",
        "8b1789fddba5deb1b33c99206fdbbd1128a73f8baf04b9f02f5c606e4871a5de",
    ),
    (
        "big-stretch",
        "שבוע טוב, Hop!",
        "snfp5qpxnkp7s4fdbqble5jz",
        "d512c030b7b8b83846e07bd5038590fda39ed11067c984b4ef752a947defc0f5",
    ),
]


@pytest.fixture(scope="module")
def demo_prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PreparedTemplate]:
    prepared_dir = tmp_path_factory.mktemp("demo-pinned")
    return {
        tid: prepare_template(load_template(DEMO_TEMPLATES, tid), prepared_dir)
        for tid in sorted({pin[0] for pin in DEMO_PINNED})
    }


@pytest.mark.parametrize(("template_id", "caption", "key", "gif_sha256"), DEMO_PINNED)
def test_demo_template_renders_are_pinned(
    demo_prepared: dict[str, PreparedTemplate],
    template_id: str,
    caption: str,
    key: str,
    gif_sha256: str,
) -> None:
    result = render(demo_prepared[template_id], caption)
    assert (result.key, hashlib.sha256(result.gif).hexdigest()) == (key, gif_sha256)
