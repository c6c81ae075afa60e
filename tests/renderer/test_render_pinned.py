"""Pinned output: a render's key and GIF bytes must not change when code is reorganised.

Taken again for renderer 4, prepare 6 (issue 12: one x264 thread, the k-means sample, a
stabilise distance per template). A change to them is a change of behaviour: it needs a new
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
        "idvdh3mbjhdu7e4wa23rkthr",
        "5329307d3cf4299f4e31bab1ef2133bace9911d390c25159412f4f7f1e6bfda6",
    ),
    # Right-to-left with an emoji: bidi, font fallback and colour glyphs all take part.
    (
        "مرحبا 👋 Hop",
        "mc3ysswtckpfjavwsi5heikh",
        "7c5b9bc2ada41a95c9a213c53b71bdce2fd85ff2e9cf53c9a81a0dabe5643580",
    ),
    (
        "Müller & Łukasz",
        "vj6fbwacoug3l7rgi2pzxctc",
        "8ce840c61292eca3aed9a97d7237f3790fdd3274091bb5895b9f99aed73bcf61",
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
        "6uen5zi6oxhckvruwczanmr7",
        "65752c55bbe8441fe0c553859e89dcd8fa620e9e48d45e0e8e3afa229f73220d",
    ),
    (
        "wake-up",
        "صباح الخير يا Hop",
        "ex4xkvt3tdbulgbs5isclr72",
        "75081ac53c77b76210b01ac31557243852365e7f9f6b631eb5ac7ba3666ee18c",
    ),
    (
        "big-stretch",
        "Stretch 🙆 mode ON 🐰",
        "juhstsk3a7fb5zmjzxrtfjyr",
        "3bef1919f20fd7fc2cb0d3de5a92b8c73e50b890c115c800071a63ceece606fc",
    ),
    (
        "big-stretch",
        "שבוע טוב, Hop!",
        "vhszgztyls5mhgyzajpru5f6",
        "b76c5bd37163143b49ca23d08344dfe49fbdf94067be84a3d85da5f0888bc418",
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
