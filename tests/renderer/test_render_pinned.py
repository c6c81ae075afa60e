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
        "6ovoxxrnwwom3zdkhgyjt3un",
        "917df4a17c4496b2edbbc06b9c2f7ae6b211c6ad7c56b412f8e3d13a3838a4a0",
    ),
    # Right-to-left with an emoji: bidi, font fallback and colour glyphs all take part.
    (
        "مرحبا 👋 Hop",
        "anofqohndrp6fteoguevu7aj",
        "d01feb42e35cc7aa3b05e22698c9cb0bcba4176ef9c6c989687160d416ff1376",
    ),
    (
        "Müller & Łukasz",
        "zqbonwokn5plwjwh5kocbsvd",
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
        "sh7eih6i6p4jy5csfxoxeouv",
        "292942ce33ba9006f8da130c3a40b52e8319e9c0b786e54298531acd6a62b0ef",
    ),
    (
        "wake-up",
        "صباح الخير يا Hop",
        "dvzit2s3m6gnn2gpjdsbnrtk",
        "ca5ea077c28f469bb4821164e43853fa92e026080333e65482b921ed887b0cdd",
    ),
    (
        "big-stretch",
        "Stretch 🙆 mode ON 🐰",
        "zbnpw2utr2le364pbgrd2qa5",
        "11365a5e8f8b389009d9930f8442ab91f5d75bd38c19ebc310c7d2e1e483879a",
    ),
    (
        "big-stretch",
        "שבוע טוב, Hop!",
        "mwve3x5dgi2mqnmaqww336na",
        "b145cb8e1148ddfe18b9933b0f851654f1ae0b4cf77ae6fe146571c35d6c5594",
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
