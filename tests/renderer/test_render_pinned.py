"""Pinned output: a render's key and GIF bytes must not change when code is reorganised.

Keys taken again for prepare 9 (a palette per span of the clip's time where that measures
better per byte: ``palette_groups``): the templates pinned before keep one palette, so their GIFs'
bytes are the same as prepare 8's; only the keys, which hold PREPARE_VERSION, changed. *Head
scratch*, which takes two palettes, is pinned anew.

Taken again for renderer 4, prepare 8: the palette's k-means weights each sampled pixel by what
an error there costs SSIM (``quality.error_weights``: smooth areas more than busy texture), over
a sample drawn from 16 frames spread over the clip (issue 12: Head scratch's SSIM was 0.0038
below gifski's; bench/results.md has every case before and after). Prepare 7 had kept the emoji
colours in the palette (issue 11), fed FFmpeg's palettegen the k-means sample and run up to 32
k-means passes with the caption's colours fixed. A change to these bytes is a change of
behaviour: it needs a new RENDERER_VERSION or PREPARE_VERSION, not a new pin.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from loopmark.renderer.prepare import PreparedTemplate, prepare_template
from loopmark.renderer.render import render
from loopmark.renderer.templates import load_template
from tests.paths import DEMO_TEMPLATES

PINNED = [
    (
        "Hello, world!",
        "va5o6dvmcjagzfzwkyrjs4ks",
        "fa688b0ac6a33260a6846e2be4ba6260b3a914a866a074639b43f7fa0db6b107",
    ),
    # Right-to-left with an emoji: bidi, font fallback and colour glyphs all take part.
    (
        "مرحبا 👋 Hop",
        "gvvfbbgd2mya3ojbmft3tplv",
        "185940e3c258ca461844aa8d8f677ed4ab5f61ee15ef8913813b075bca3c7c42",
    ),
    (
        "Müller & Łukasz",
        "nsjwywpfsh4vwiv3z4e4f472",
        "a16db7c6bbc6a3d044528931ba67db61e0cefd77c74977662a54c11d63c41e72",
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
        "qvad426pdyjcvjezqgyowzp6",
        "8ea47de879cc048fb9cccd9282ba971b8758812d0aed4a17958884c22c73c2d6",
    ),
    (
        "wake-up",
        "صباح الخير يا Hop",
        "zj6axmugmzdgtxu775l7r5lc",
        "ef9ee2ce354880c7ddfd73aa95c32ca3dd604e35346ebd55d499df4a45c9c9fc",
    ),
    (
        "big-stretch",
        "Stretch 🙆 mode ON 🐰",
        "ysi2lks22mdr3i6zaghdddpt",
        "8f07496f40f2e19e21fc7df6dfa0207b7c39fb099380fa70a3b01aac47f45294",
    ),
    (
        "big-stretch",
        "שבוע טוב, Hop!",
        "q5ptz753xi62nqz2xfazeavs",
        "abb5ad45e73569887e03a4f123790595eb8065879b99fe1a7c8165ded3d6d0c4",
    ),
    # The slow boomerang takes a second palette (its palette_spans, palette_groups): local
    # colour tables, pixels held across the palette changes, captions mapped run by run.
    (
        "head-scratch",
        "Plot twist",
        "tpqqc36jhvxz7jgpplrjgpqc",
        "b09f98a5ae2f6772162f6efb0f193db0988a5a68693905a70ad741e3e55ff839",
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


def test_only_head_scratch_takes_a_palette_per_span(
    demo_prepared: dict[str, PreparedTemplate],
) -> None:
    for template_id, prepared in demo_prepared.items():
        meta = json.loads((prepared.folder / "meta.json").read_text())
        two = template_id == "head-scratch"
        assert meta["palette_choice"]["palettes"] == (2 if two else 1)
        # Tried only where template.toml asks ([output] palette_spans: about a second of
        # preparation); the others prepare one palette as before.
        assert [option["palettes"] for option in meta["palette_choice"]["tried"]] == (
            [1, 2] if two else [1]
        )
        assert prepared.template.palette_spans == two
        assert prepared.grouped == two
        assert len(set(meta["frame_palettes"])) == (2 if two else 1)
    scratch = demo_prepared["head-scratch"]
    assert scratch.palettes is not None and scratch.palettes.shape == (2, 256, 3)
    # A boomerang's way back takes its way out's palette: the ends on the first.
    assert scratch.frame_palettes is not None
    assert scratch.frame_palettes[0] == scratch.frame_palettes[-1] == 0
