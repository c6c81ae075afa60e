"""SSIM in NumPy: the value scikit-image's structural_similarity gives (the bench's measure)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from loopmark.renderer.prepare import PreparedTemplate
from loopmark.renderer.quality import Reference, ssim


def test_ssim_is_scikit_images_on_real_frames(small: PreparedTemplate) -> None:
    truth = np.asarray(small.frames[3])
    for candidate in (
        small.palette[small.indices[3]],  # the quantised frame
        np.asarray(small.frames[4]),  # the next frame: a real difference
        np.clip(truth.astype(int) + 9, 0, 255).astype(np.uint8),  # brighter
    ):
        # scikit-image's metrics carry no annotations (a third-party gap).
        expected = structural_similarity(truth, candidate, channel_axis=2, data_range=255)  # type: ignore[no-untyped-call]
        assert abs(ssim(truth, candidate) - expected) < 1e-9
    assert ssim(truth, truth) == 1.0


def test_one_reference_scores_many_candidates(small: PreparedTemplate) -> None:
    truth = np.asarray(small.frames[0])
    reference = Reference(truth)
    worse = [np.clip(truth.astype(int) + shift, 0, 255).astype(np.uint8) for shift in (3, 30)]
    scores = [reference.ssim(candidate) for candidate in worse]
    assert scores == [ssim(truth, candidate) for candidate in worse]
    assert 1.0 > scores[0] > scores[1]
