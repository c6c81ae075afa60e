"""Palettes per span of the clip's time: local colour tables, the stabiliser across a palette
change, the choice at preparation, and a render of a template with two palettes."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image, ImageSequence

from loopmark.renderer.gif import encode_gif
from loopmark.renderer.palette_groups import (
    PaletteTrial,
    choose_palettes,
    clip_palette,
    displayed,
    frame_palettes,
    keep_across,
    palette_runs,
)
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.quantize import TRANSPARENT_INDEX, build_lut, nearest_indices, stabilise
from loopmark.renderer.render import RenderSettings, caption_layer, compose_frames, render


def decoded(data: bytes) -> list[np.ndarray]:
    with Image.open(io.BytesIO(data)) as image:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)]


def local_tables(data: bytes) -> list[bool]:
    """Whether each image descriptor of a GIF carries a local colour table."""
    at = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    flags = []
    while data[at] != 0x3B:
        if data[at] == 0x21:  # an extension: its label, then sub-blocks
            at += 2
            while data[at]:
                at += data[at] + 1
            at += 1
            continue
        packed = data[at + 9]
        flags.append(bool(packed & 0x80))
        at += 10 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
        at += 1  # LZW minimum code size
        while data[at]:
            at += data[at] + 1
        at += 1
    return flags


def two_palette_animation() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    palettes = rng.integers(0, 256, size=(2, 256, 3), dtype=np.uint8)
    indices = rng.integers(0, TRANSPARENT_INDEX, size=(6, 20, 30), dtype=np.uint8)
    indices[4] = indices[3]  # the same indices, the same palette: nothing to draw
    indices[5, :10] = TRANSPARENT_INDEX  # "leave what is shown" (an older palette's colours)
    ids = np.array([0, 0, 0, 1, 1, 1], dtype=np.intp)
    return indices, palettes, ids


def test_frames_on_another_palette_get_local_tables_and_decode_to_their_colours() -> None:
    indices, palettes, ids = two_palette_animation()
    data = encode_gif(indices, palettes[0], [10] * 6, palettes=palettes, groups=ids)
    assert local_tables(data) == [False, False, False, True, True, True]
    expected = list(displayed(indices, palettes, ids))
    assert np.array_equal(expected[5][:10], expected[4][:10])  # held from the frame before
    for got, want in zip(decoded(data), expected, strict=True):
        assert np.array_equal(got, want)


def test_one_palette_encodes_as_before() -> None:
    indices, palettes, _ = two_palette_animation()
    indices[5, :10] = 7
    zeros = np.zeros(6, dtype=np.intp)
    plain = encode_gif(indices, palettes[0], [10] * 6)
    assert encode_gif(indices, palettes[0], [10] * 6, palettes=palettes, groups=zeros) == plain
    assert not any(local_tables(plain))


def test_a_boomerang_takes_its_way_out_palettes_on_the_way_back() -> None:
    assert frame_palettes(10, 2).tolist() == [0] * 5 + [1] * 5
    # 6 frames out (0..5), 4 back (4..1): a source frame's palette both ways.
    assert frame_palettes(10, 2, "boomerang").tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 0, 0]
    assert palette_runs([0, 0, 1, 1, 0]) == [(slice(0, 2), 0), (slice(2, 4), 1), (slice(4, 5), 0)]


def test_the_stabiliser_across_a_palette_change_compares_displayed_colours() -> None:
    frames = np.full((4, 8, 8, 3), 100, dtype=np.uint8)
    frames[2:, :, 4:] = 200  # the right half changes with the palette
    palettes = np.zeros((2, 256, 3), dtype=np.uint8)
    palettes[0, 0] = 101  # near the left half's truth
    palettes[0, 1] = 150
    palettes[1, 0] = 200  # index 0 means another colour on the second palette
    palettes[1, 1] = 98
    ids = np.array([0, 0, 1, 1], dtype=np.intp)
    indices = np.zeros((4, 8, 8), dtype=np.uint8)
    for s, g in palette_runs(ids):
        indices[s] = nearest_indices(frames[s], palettes[g])
        stabilise(indices[s], frames[s], palettes[g], distance=4)
    keep_across(indices, frames, palettes, ids, distance=4)
    assert (indices[2:, :, :4] == TRANSPARENT_INDEX).all()  # 101 is within 4 of 100: held
    assert (indices[2:, :, 4:] == 0).all()  # drawn: 200 on the second palette
    shown = list(displayed(indices, palettes, ids))
    assert np.abs(shown[3].astype(int) - frames[3]).max() <= 1
    data = encode_gif(indices, palettes[0], [10] * 4, palettes=palettes, groups=ids)
    assert all(np.array_equal(a, b) for a, b in zip(decoded(data), shown, strict=True))


def drifting_clip(count: int = 24) -> np.ndarray:
    """Smooth gradients of reds and greens for the first half of the clip, blues and greens
    for the second: more colours than one palette holds well, few shared between the halves."""
    rng = np.random.default_rng(5)
    frames = np.empty((count, 48, 64, 3), dtype=np.uint8)
    x = np.linspace(0, 255, 64)[None, :]
    y = np.linspace(0, 255, 48)[:, None]
    for i in range(count):
        a = np.clip(x + rng.uniform(-8, 8), 0, 255) + 0 * y
        b = y + 0 * x
        c = np.full_like(a, 30.0)
        channels = (a, b, c) if i < count // 2 else (c, b, a)
        frames[i] = np.stack(channels, axis=-1).astype(np.uint8)
    return frames


def test_a_clip_whose_colours_drift_gets_a_palette_per_span_and_a_still_one_keeps_one() -> None:
    frames = drifting_clip()
    choice = choose_palettes(frames, [(255, 255, 255), (0, 0, 0)], 12, distance=6.0)
    assert choice.frame_palettes == tuple([0] * 12 + [1] * 12)
    assert len(choice.palettes) == 2
    tried = choice.record["tried"]
    assert tried[1]["ssim"] > tried[0]["ssim"] + 0.02
    still = np.repeat(frames[:1], 24, axis=0)
    same = choose_palettes(still, [(255, 255, 255)], 12, distance=6.0)
    assert same.frame_palettes == (0,) * 24 and len(same.palettes) == 1
    assert [t["palettes"] for t in same.record["tried"]] == [1, 2]  # tried, not worth it


def two_palettes(small: PreparedTemplate) -> PreparedTemplate:
    """The small template with a palette of its own for the second half of its frames."""
    count = small.frame_count
    ids = frame_palettes(count, 2)
    palettes = np.stack(
        [clip_palette(np.ascontiguousarray(small.frames[s]), [], 8) for s, _ in palette_runs(ids)]
    )
    indices = np.empty(small.indices.shape, dtype=np.uint8)
    for s, g in palette_runs(ids):
        indices[s] = nearest_indices(small.frames[s], palettes[g])
        stabilise(indices[s], small.frames[s], palettes[g], distance=small.stabilise_distance)
    keep_across(indices, small.frames, palettes, ids, distance=small.stabilise_distance)
    assert (indices == TRANSPARENT_INDEX).any()  # some pixels hold the first palette's colour
    return dataclasses.replace(
        small,
        indices=indices,
        palette=palettes[0],
        lut=build_lut(palettes[0]),
        frame_palettes=tuple(int(g) for g in ids),
        palettes=palettes,
        luts=np.stack([build_lut(p) for p in palettes]),
    )


def test_a_template_with_two_palettes_renders_each_frame_on_its_own(
    small: PreparedTemplate,
) -> None:
    grouped = two_palettes(small)
    result = render(grouped, "Hello, world!")
    assert local_tables(result.gif) == [bool(g) for g in grouped.frame_groups()]
    truth = compose_frames(grouped, caption_layer(grouped, "Hello, world!"))
    for got, want in zip(decoded(result.gif), truth, strict=True):
        assert np.abs(got.astype(int) - want).mean() < 6  # each frame decodes near its truth
    # The same template on one palette: no local tables.
    assert not any(local_tables(render(small, "Hello, world!").gif))


def test_a_budget_step_maps_a_two_palette_template_afresh_onto_one(
    small: PreparedTemplate,
) -> None:
    grouped = two_palettes(small)
    full = render(grouped, "Hello, world!").gif
    settings = RenderSettings(max_gif_bytes=len(full) * 2 // 3)
    result = render(grouped, "Hello, world!", settings=settings)
    step = result.budget
    assert step is not None and step.fits and (step.frame_step, step.width) != (1, grouped.width)
    assert not any(local_tables(result.gif))  # every frame on the first palette
    truth = compose_frames(grouped, caption_layer(grouped, "Hello, world!"))[:: step.frame_step]
    for got, want in zip(decoded(result.gif), truth, strict=True):
        scaled = Image.fromarray(want).resize((step.width, step.height), Image.Resampling.LANCZOS)
        assert np.abs(got.astype(int) - np.asarray(scaled)).mean() < 6


def test_the_trial_is_read_back_from_the_record_or_not_at_all() -> None:
    one = {"palettes": 1, "distance": 7.0, "ssim": 0.9646, "share": 0.5, "bytes": 1_000_000}
    two = {"palettes": 2, "distance": 7.0, "ssim": 0.9665, "share": 0.5, "bytes": 1_032_000}
    kept = PaletteTrial.of_record({"palettes": 2, "tried": [one, two]})
    assert kept is not None and kept.palettes == 2
    assert kept.ssim_change == pytest.approx(0.0019) and kept.bytes_change == pytest.approx(0.032)
    # Too few frames to try: one option, nothing measured.
    assert PaletteTrial.of_record({"palettes": 1, "tried": [{"palettes": 1, "distance": 7.0}]}) == (
        PaletteTrial(1)
    )
    # An older or altered manifest shows nothing rather than failing the page.
    broken: list[object] = [
        None,
        [],
        {"palettes": 1},
        {"palettes": 1, "tried": []},
        {"palettes": "x", "tried": [one]},
        {"palettes": 2, "tried": [one, {**two, "bytes": "x"}]},
        {"palettes": 2, "tried": [{**one, "bytes": 0}, two]},
    ]
    for record in broken:
        assert PaletteTrial.of_record(record) is None
