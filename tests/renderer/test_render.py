"""The per-caption render on real footage: structure, caption pixels, keys, determinism."""

from __future__ import annotations

import io
import unicodedata
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageSequence

from loopmark.errors import CaptionRejected
from loopmark.renderer import caption_policy, process
from loopmark.renderer.prepare import PreparedTemplate, prepare_template
from loopmark.renderer.quantize import lookup, stabilise
from loopmark.renderer.render import (
    RenderSettings,
    accept_caption,
    caption_indices,
    caption_layer,
    compose_frames,
    normalised_render_key,
    render,
    render_key,
)
from loopmark.renderer.templates import load_template, load_templates
from tests.paths import DEMO_TEMPLATES


def gif_frames(data: bytes) -> tuple[Image.Image, list[np.ndarray]]:
    image = Image.open(io.BytesIO(data))
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(image)]
    return image, frames


def test_gif_loops_forever_with_every_frame_at_output_size(small: PreparedTemplate) -> None:
    result = render(small, "Hello there")
    image, frames = gif_frames(result.gif)
    assert image.format == "GIF"
    assert image.info["loop"] == 0
    assert len(frames) == small.frame_count == result.frames == 8
    assert image.size == (small.width, small.height) == (result.width, result.height)
    assert result.seconds == pytest.approx(1.0)
    assert result.mp4[4:8] == b"ftyp"
    assert Image.open(io.BytesIO(result.poster)).size == image.size


def test_gif_is_faithful_to_the_unquantised_frames(small: PreparedTemplate) -> None:
    # Catches palette/index mix-ups: every frame must be close to the truth it came from.
    result = render(small, "Faithful")
    truth = compose_frames(small, caption_layer(small, "Faithful"))
    _, frames = gif_frames(result.gif)
    for decoded, expected in zip(frames, truth, strict=True):
        error = np.abs(decoded.astype(int) - expected.astype(int)).mean()
        assert error < 6, error


def test_first_frame_already_shows_the_caption(small: PreparedTemplate) -> None:
    box = small.box
    plain = small.frames[0, box.y : box.y + box.h, box.x : box.x + box.w].astype(int)
    _, frames = gif_frames(render(small, "FIRST FRAME").gif)
    captioned = frames[0][box.y : box.y + box.h, box.x : box.x + box.w].astype(int)
    # White fill and black stroke over footage: a large share of the box changes.
    changed = (np.abs(captioned - plain).sum(axis=2) > 60).mean()
    assert changed > 0.05
    poster = np.asarray(Image.open(io.BytesIO(render(small, "FIRST FRAME").poster)))
    assert (
        np.abs(poster[box.y : box.y + box.h, box.x : box.x + box.w].astype(int) - plain).mean() > 10
    )


def test_same_inputs_give_the_same_key_and_bytes(small: PreparedTemplate) -> None:
    first = render(small, "Same again")
    second = render(small, "Same again")
    assert first.key == second.key
    assert first.gif == second.gif
    assert first.mp4 == second.mp4
    assert first.poster == second.poster


def test_nfc_and_nfd_captions_share_a_key(small: PreparedTemplate) -> None:
    nfc = unicodedata.normalize("NFC", "Müller café")
    nfd = unicodedata.normalize("NFD", "Müller café")
    assert nfc != nfd
    assert render_key(small.template, nfc) == render_key(small.template, nfd)
    assert render(small, nfc).gif == render(small, nfd).gif


def test_the_normalised_key_is_the_key_without_a_second_pass(small: PreparedTemplate) -> None:
    raw = unicodedata.normalize("NFD", "  Müller \n café ")
    normalised = accept_caption(small.template, raw)
    assert normalised_render_key(small.template, normalised) == render_key(small.template, raw)
    assert normalised_render_key(small.template, raw) != render_key(small.template, raw)


def test_a_render_normalises_its_caption_once(
    small: PreparedTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def counting(text: str) -> str:
        calls.append(text)
        return unicodedata.normalize("NFC", " ".join(text.split()))

    monkeypatch.setattr(caption_policy, "normalize_caption", counting)
    monkeypatch.setattr("loopmark.renderer.render.normalize_caption", counting)
    result = render(small, "Once  only")
    assert calls == ["Once  only"]
    assert result.key == render_key(small.template, "Once only")


def test_keys_differ_by_template_caption_and_settings(small: PreparedTemplate) -> None:
    demo = load_template(DEMO_TEMPLATES, "wake-up")
    key = render_key(small.template, "Hi")
    assert len(key) == 24 and key.isalnum() and key == key.lower()
    assert render_key(demo, "Hi") != key
    assert render_key(small.template, "Hi!") != key
    assert render_key(small.template, "Hi", RenderSettings(gifsicle_level="-O3")) != key


@pytest.mark.parametrize("caption", ["It's", "a:b", "back\\slash", "%{eif:7*6:d}", "%{localtime}"])
def test_hostile_captions_render_literally_and_never_reach_ffmpeg(
    small: PreparedTemplate, caption: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []
    real_run_tool = process.run_tool

    def spy(argv: list[str], **kwargs: object) -> bytes:
        seen.append(list(argv))
        return real_run_tool(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("loopmark.renderer.video.run_tool", spy)
    result = render(small, caption)
    assert seen, "the MP4 encode should have run FFmpeg"
    assert all(caption not in arg for argv in seen for arg in argv)
    assert result.gif


def test_expansion_syntax_is_drawn_as_typed_not_evaluated(small: PreparedTemplate) -> None:
    literal = np.asarray(caption_layer(small, "%{eif:7*6:d}"))
    evaluated = np.asarray(caption_layer(small, "42"))
    # The literal text is far wider than two digits.
    assert (literal[..., 3] > 0).sum() > 2 * (evaluated[..., 3] > 0).sum()
    assert render(small, "%{eif:7*6:d}").gif != render(small, "42").gif


def test_refused_caption_raises_before_rendering(small: PreparedTemplate) -> None:
    with pytest.raises(CaptionRejected) as excinfo:
        render(small, "x" * 200)
    assert excinfo.value.code == "caption_too_long"


def test_preset_templates_accept_only_their_captions(small: PreparedTemplate) -> None:
    presets = replace(small.template, caption_mode="presets", captions=("Plot twist",))
    prepared = replace(small, template=presets)
    assert render(prepared, "  Plot   twist ").frames == 8
    with pytest.raises(CaptionRejected) as excinfo:
        render(prepared, "Something else")
    assert excinfo.value.code == "caption_not_offered"


def test_progress_is_reported_in_order_up_to_done(small: PreparedTemplate) -> None:
    seen: list[float] = []
    render(small, "Progress", progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert len(seen) > small.frame_count  # one report per encoded frame at least


def test_gifsicle_pass_streams_a_valid_gif(small: PreparedTemplate) -> None:
    result = render(small, "Squeezed", settings=RenderSettings(gifsicle_level="-O3"))
    image, frames = gif_frames(result.gif)
    assert len(frames) == small.frame_count
    assert image.info["loop"] == 0


@pytest.mark.slow
def test_every_demo_template_prepares_and_renders(tmp_path_factory: pytest.TempPathFactory) -> None:
    prepared_dir = tmp_path_factory.mktemp("demo-prepared")
    templates = load_templates(DEMO_TEMPLATES)
    assert len(templates) >= 3
    for template in templates:
        assert template.credit, "demo templates from Big Buck Bunny must carry the CC-BY credit"
        prepared = prepare_template(template, prepared_dir)
        result = render(prepared, template.captions[0])
        _, frames = gif_frames(result.gif)
        assert len(frames) == prepared.frame_count
        assert prepared.preview_mp4.stat().st_size > 0
        assert prepared.poster_jpg.stat().st_size > 0


def whole_box(
    prepared: PreparedTemplate, layer: np.ndarray, distance: float
) -> tuple[np.ndarray, np.ndarray]:
    """The straightforward formulation (renderer 2): blend, look up and stabilise every pixel of
    the box in every frame. Composing only the ink must give exactly these arrays."""
    box = prepared.box
    rows, cols = slice(box.y, box.y + box.h), slice(box.x, box.x + box.w)
    frames = np.array(prepared.frames)
    alpha = layer[..., 3:].astype(np.float32) / 255.0
    region = frames[:, rows, cols]
    blended = region.astype(np.float32) * (1 - alpha) + layer[..., :3].astype(np.float32) * alpha
    region[...] = np.rint(blended).astype(np.uint8)
    indices = np.array(prepared.indices)
    inked = layer[..., 3] > 0
    box_indices = indices[:, rows, cols]
    box_indices[:, inked] = lookup(prepared.lut, frames[:, rows, cols][:, inked])
    stabilise(box_indices, frames[:, rows, cols], prepared.palette, distance=distance)
    return frames, indices


@pytest.mark.parametrize("caption", ["Ink only, please", "Ёжик 🦔 מה"])
@pytest.mark.parametrize("distance", [None, 10.0])
def test_composing_only_the_ink_gives_the_whole_box_result(
    small: PreparedTemplate, caption: str, distance: float | None
) -> None:
    stabilise_distance = distance or small.stabilise_distance
    settings = RenderSettings(stabilise_distance=stabilise_distance)
    layer = caption_layer(small, caption)
    assert ((layer[..., 3] > 0) & (layer[..., 3] < 255)).any()  # an anti-aliased edge
    composed = compose_frames(small, layer)
    indices = caption_indices(small, composed, layer, settings)
    frames, expected = whole_box(small, layer, stabilise_distance)
    assert np.array_equal(composed, frames)
    assert np.array_equal(indices, expected)
