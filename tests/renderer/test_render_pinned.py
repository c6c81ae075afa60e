"""Pinned output: a render's key and GIF bytes must not change when code is reorganised.

Taken again for renderer 4, prepare 7: the palette keeps the emoji colours (issue 11: 🔥's yellow
core came out pale green; test_caption_palette checks it), FFmpeg's palettegen sees the k-means
sample instead of every pixel, and the k-means runs up to 32 passes with the caption's colours
as fixed entries (issue 12: preparation CPU, and SSIM back). The seven GIFs are 1.3–1.5 %
smaller than prepare 6's. A change to them is a change of behaviour: it needs a new
RENDERER_VERSION or PREPARE_VERSION, not a new pin.
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
        "fbaad1b120655f89a7b6362708f5641713136f77566e7cc07074a92f9bf81932",
    ),
    # Right-to-left with an emoji: bidi, font fallback and colour glyphs all take part.
    (
        "مرحبا 👋 Hop",
        "sklcqbqvtj3irx63frzonpkd",
        "e2917f144e9d9960420401c8f9f6088e7fd17a510ffedff9ae2406d279d5d846",
    ),
    (
        "Müller & Łukasz",
        "zvtdds7664m6eccq5xuwc7wu",
        "7700a18466055faa878d8e61f6e4014098d1dc545c70db84408d36f8d57c7215",
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
        "fabdc277207be3d641d46b1ddec28adead707d373f7eac03470f7068b9f92dcb",
    ),
    (
        "wake-up",
        "صباح الخير يا Hop",
        "2m7enwrfxndfzb2vrmo7q7we",
        "43c34bf82f5498accd80983027d5b04cd00b3a6d21d2a328a29e65fef50518f7",
    ),
    (
        "big-stretch",
        "Stretch 🙆 mode ON 🐰",
        "g2fmqbwraap6pkoiwkclehgj",
        "d7d7d36bbdad97951bd616a21e1daee434700122ac1fe8fd54f343f3373aa5b8",
    ),
    (
        "big-stretch",
        "שבוע טוב, Hop!",
        "rldtsdf7n4je2bohy4kkucvc",
        "02679d305118d2765a368fcdd65b9e5c07b1f0495c911e59d0914c3fc37fa1e2",
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
