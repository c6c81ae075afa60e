"""Palette helpers: a free transparency slot, nearest look-ups, bounded stabilising."""

from __future__ import annotations

import numpy as np

from loopmark.renderer.quantize import (
    TRANSPARENT_INDEX,
    build_lut,
    build_palette,
    lookup,
    nearest_indices,
    stabilise,
)


def test_palette_has_reserved_colours_and_a_free_transparency_slot() -> None:
    clip = np.array([[10, 20, 30], [200, 100, 50]], np.uint8)
    palette = build_palette(clip, [(255, 255, 255), (0, 0, 0)])
    assert palette.shape == (256, 3)
    assert tuple(palette[2]) == (255, 255, 255)
    assert tuple(palette[3]) == (0, 0, 0)
    assert tuple(palette[TRANSPARENT_INDEX]) == tuple(palette[TRANSPARENT_INDEX - 1])


def test_lookup_finds_the_nearest_colour_and_never_the_transparency_slot() -> None:
    clip = np.array([[0, 0, 0], [250, 0, 0], [0, 250, 0], [0, 0, 250]], np.uint8)
    palette = build_palette(clip, [(255, 255, 255)])
    lut = build_lut(palette)
    pixels = np.array([[240, 10, 10], [5, 5, 5], [10, 230, 20], [250, 250, 250]], np.uint8)
    assert lookup(lut, pixels).tolist() == [1, 0, 2, 4]
    assert TRANSPARENT_INDEX not in set(lut.tolist())


def test_nearest_indices_are_exact_and_skip_the_transparency_slot() -> None:
    palette = build_palette(np.array([[0, 0, 0], [255, 255, 255], [200, 0, 0]], np.uint8), [])
    frames = np.array(
        [[[[10, 10, 10], [250, 240, 245]], [[190, 20, 5], [120, 120, 120]]]], np.uint8
    )
    indices = nearest_indices(frames, palette)
    assert indices.tolist() == [[[0, 1], [2, 2]]]  # mid-grey is nearer red than black
    assert TRANSPARENT_INDEX not in nearest_indices(
        np.full((1, 2, 2, 3), palette[TRANSPARENT_INDEX], np.uint8), palette
    )


def test_stabilise_keeps_close_indices_and_lets_real_changes_through() -> None:
    palette = np.zeros((256, 3), np.uint8)
    palette[1] = (100, 100, 100)
    palette[2] = (104, 100, 100)  # a near twin
    palette[3] = (200, 0, 0)  # a real change
    truth = np.zeros((3, 1, 2, 3), np.uint8)
    truth[0] = (100, 100, 100)
    truth[1, 0, 0] = (104, 100, 100)
    truth[1, 0, 1] = (200, 0, 0)
    truth[2] = truth[1]
    indices = np.array([[[1, 1]], [[2, 3]], [[2, 3]]], np.uint8)
    out = stabilise(indices.copy(), truth, palette, distance=8)
    assert out[1].tolist() == [[1, 3]]  # the twin is absorbed, the red pixel is not
    assert out[2].tolist() == [[1, 3]]
    untouched = stabilise(indices.copy(), truth, palette, distance=0)
    assert untouched.tolist() == indices.tolist()
