"""Palette helpers: a free transparency slot, nearest look-ups, bounded stabilising."""

from __future__ import annotations

import numpy as np

from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.quality import error_weights, ssim
from loopmark.renderer.quantize import (
    STABILISE_CANDIDATES,
    TRANSPARENT_INDEX,
    build_lut,
    build_palette,
    lookup,
    nearest_indices,
    palette_sample,
    refine_palette,
    stabilise,
    tune_stabilise_distance,
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


def brute_force_nearest(colours: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Integer squared distances to every usable entry; the lowest index wins a tie."""
    usable = palette[:TRANSPARENT_INDEX].astype(np.int64)
    distances = ((colours[:, None, :].astype(np.int64) - usable[None, :, :]) ** 2).sum(axis=2)
    nearest: np.ndarray = distances.argmin(axis=1)
    return nearest


def random_palette(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clip = rng.integers(0, 256, (253, 3), dtype=np.uint8)
    clip[10] = clip[20]  # a duplicate entry: ties must go to the lower index
    clip[30] = clip[31]
    clip[30, 0] ^= 1  # near twins: margins of one unit must come out exactly
    return build_palette(clip, [(255, 255, 255), (0, 0, 0)])


def test_the_lut_is_the_brute_force_table_on_a_sample() -> None:
    for seed in (1, 2):
        palette = random_palette(seed)
        lut = build_lut(palette)
        rng = np.random.default_rng(seed + 10)
        cells = np.concatenate([rng.integers(0, len(lut), 20_000), [0, len(lut) - 1]])
        levels = np.stack([cells >> 12, (cells >> 6) & 63, cells & 63], axis=1)
        centres = levels * 4 + 2  # the colour each cell stands for
        assert np.array_equal(lut[cells], brute_force_nearest(centres, palette))


def test_nearest_indices_are_the_brute_force_ones_on_real_looking_frames() -> None:
    palette = random_palette(3)
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 256, (11, 30, 40, 3), dtype=np.uint8)  # more than one group
    frames[5:] = frames[:6]  # repeated colours across groups
    expected = brute_force_nearest(frames.reshape(-1, 3), palette).reshape(frames.shape[:-1])
    assert np.array_equal(nearest_indices(frames, palette), expected)


def test_refined_palette_is_deterministic_and_moves_towards_the_pixels() -> None:
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 64, (4, 50, 60, 3), dtype=np.uint8)  # dark pixels only
    start = np.full((8, 3), 200, np.uint8)
    start[0] = (30, 30, 30)
    once = refine_palette(frames, start, sample=5_000)
    assert np.array_equal(once, refine_palette(frames, start, sample=5_000))
    assert once[0].max() < 64  # the entry that owns every pixel moved to their mean
    assert abs(int(once[0].mean()) - 31) <= 2
    assert (once[1:] == 200).all()  # entries no pixel chose stay where they were


def test_the_tuned_distance_is_the_largest_that_keeps_the_floor(small: PreparedTemplate) -> None:
    frames = np.asarray(small.frames)
    nearest = nearest_indices(frames, small.palette)
    candidates = (2.0, 6.0, 12.0, 24.0, 48.0)

    def score(distance: float) -> float:  # what the tuner measures, the long way
        indices = stabilise(nearest.copy(), frames, small.palette, distance=distance)
        return float(np.mean([ssim(frames[i], small.palette[indices[i]]) for i in (3, 7)]))

    scores = [score(d) for d in candidates]
    assert scores == sorted(scores, reverse=True)  # a larger distance costs quality
    for floor, expected in [
        ((scores[2] + scores[3]) / 2, 12.0),
        (scores[0] + 0.01, 2.0),  # none keeps it: the smallest
        (scores[-1] - 0.01, 48.0),
    ]:
        tuned = tune_stabilise_distance(
            frames, nearest, small.palette, floor=floor, candidates=candidates
        )
        assert tuned == expected
    assert small.stabilise_distance in STABILISE_CANDIDATES  # what preparation chose


def test_the_palette_sample_is_fixed_drawn_from_the_frames_and_shaped_as_an_image() -> None:
    rng = np.random.default_rng(6)
    frames = rng.integers(0, 256, (5, 30, 40, 3), dtype=np.uint8)
    whole = palette_sample(frames, pixels=6_000)  # 6,000 pixels: all of them
    assert whole.image is frames
    assert whole.weights.shape == (6_000,)
    sample = palette_sample(frames, pixels=1_000)
    assert sample.image.shape == (1, 25, 40, 3)  # whole rows of the frames' width
    assert sample.weights.shape == (1_000,)
    again = palette_sample(frames, pixels=1_000)
    assert np.array_equal(sample.image, again.image)
    assert np.array_equal(sample.weights, again.weights)
    seen = {tuple(p) for p in frames.reshape(-1, 3).tolist()}
    assert {tuple(p) for p in sample.image.reshape(-1, 3).tolist()} <= seen


def test_the_palette_sample_comes_from_sixteen_frames_spread_over_the_clip() -> None:
    frames = np.zeros((40, 8, 10, 3), np.uint8)
    frames[:] = np.arange(40, dtype=np.uint8)[:, None, None, None]  # frame i is grey i
    sample = palette_sample(frames, pixels=100_000)
    greys = np.unique(sample.image[..., 0])
    assert len(greys) == 16
    assert greys[0] == 0 and greys[-1] == 39  # the first and the last frame among them


def test_error_weights_favour_smooth_areas_over_texture() -> None:
    rng = np.random.default_rng(8)
    image = np.full((20, 40, 3), 120, np.uint8)
    image[:, 20:] = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)  # noise on the right
    weights = error_weights(image)
    assert weights.shape == (20, 40)
    assert np.allclose(weights[:, :10], 1.0)  # flat: a full weight
    assert weights[:, 30:].max() < 0.05  # busy: errors there cost SSIM little


def test_weighted_k_means_moves_an_entry_towards_its_heavier_pixels() -> None:
    frames = np.zeros((1, 2, 50, 3), np.uint8)
    frames[0, 0] = 20
    frames[0, 1] = 60  # one entry owns both rows
    start = np.array([[40, 40, 40], [250, 250, 250]], np.uint8)
    even = refine_palette(frames, start)
    assert (even[0] == 40).all()
    weights = np.ones(100, np.float32)
    weights[:50] = 3.0  # the dark row counts three times
    heavy = refine_palette(frames, start, weights=weights)
    assert (heavy[0] == 30).all()  # (3 × 20 + 60) / 4


def test_stabilise_writes_through_a_view_of_a_larger_array() -> None:
    """A render stabilises its text box in place, a non-contiguous view of the frames' indices."""
    palette = build_palette(np.array([[0, 0, 0], [10, 10, 10], [200, 200, 200]], np.uint8), [])
    truth = np.full((3, 4, 6, 3), 9, np.uint8)
    indices = np.zeros((3, 4, 6), np.uint8)
    indices[1:] = 1  # 0 → 1 with the truth 9 units from entry 0: kept within distance 16
    box = indices[:, 1:3, 2:5]
    stabilise(box, truth[:, 1:3, 2:5], palette, distance=16)
    assert (indices[:, 1:3, 2:5] == 0).all()
    assert (indices[1:, 0] == 1).all()  # outside the box: untouched


def test_fixed_entries_keep_their_pixels_and_stay_out_of_the_result() -> None:
    frames = np.zeros((2, 10, 20, 3), np.uint8)
    frames[:, :, 10:] = 250  # half near black, half near white
    start = np.array([[30, 30, 30], [200, 200, 200]], np.uint8)
    free = refine_palette(frames, start)
    assert free[1].min() >= 249  # the light entry moves onto the white pixels
    kept = refine_palette(frames, start, fixed=[(255, 255, 255)])
    assert kept.shape == (2, 3)  # only the moving colours come back
    assert (kept[0] == 0).all()  # the dark entry still takes the black pixels
    assert (kept[1] == 200).all()  # the fixed white owns the white ones: the entry stays
