"""Pinned output: a render's key and GIF bytes must not change when code is reorganised.

Taken again for renderer 4, prepare 7: the palette keeps the emoji colours (issue 11: 🔥's yellow
core came out pale green; test_caption_palette checks it), FFmpeg's palettegen sees the k-means
sample instead of every pixel and the k-means runs up to 32 passes (issue 12: preparation CPU).
The seven GIFs are 1.5–1.7 % smaller than prepare 6's. A change to them is a change of
behaviour: it needs a new RENDERER_VERSION or PREPARE_VERSION, not a new pin.
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
        "y3jt6o234lwttwdpvgu5a63w",
        "908629de7a1f6101e6b30000c0a7b076175699714fb2a00ecf038c1a17cb6940",
    ),
    # Right-to-left with an emoji: bidi, font fallback and colour glyphs all take part.
    (
        "مرحبا 👋 Hop",
        "sklcqbqvtj3irx63frzonpkd",
        "59dacbd7413906798f1827187a9f3178f86369f254bd3ea4ec914096b6c51a0d",
    ),
    (
        "Müller & Łukasz",
        "zvtdds7664m6eccq5xuwc7wu",
        "7c4b2645955c975517fd9f83eeb84aeb3ab2763a6b24e069cbe7e010785c6157",
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
        "6zl6dqpmgukby5sm75td6tya",
        "5f423ab223ed9266caf9c55a47243bfe8074346932200d3ff5fefe8aadc107f2",
    ),
    (
        "wake-up",
        "صباح الخير يا Hop",
        "2m7enwrfxndfzb2vrmo7q7we",
        "4092015db1db6309f28e00c93dbce326afb5d793fa7e5ae93d620331efa8e9b8",
    ),
    (
        "big-stretch",
        "Stretch 🙆 mode ON 🐰",
        "g2fmqbwraap6pkoiwkclehgj",
        "b4a3ae0937d7a0562f1a94d00ddace325119ad5d2c02fa4f77d3296565e8a99f",
    ),
    (
        "big-stretch",
        "שבוע טוב, Hop!",
        "rldtsdf7n4je2bohy4kkucvc",
        "1bd20be1b80b35d155bf9faf3dd686d10b2b011530263c1dee3f2e638d19a96a",
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
