"""Caption line breaking: spaces, between CJK characters, kinsoku, hard breaks, last resorts."""

from __future__ import annotations

import pytest

from loopmark.errors import CaptionRejected
from loopmark.renderer.caption import fit_caption, render_caption_layer
from tests.renderer.caption.helpers import BOX, ink_bands, save, style


def test_word_longer_than_the_line_breaks_only_as_a_last_resort() -> None:
    st = style(size=30, max_lines=3)
    fit = fit_caption("Supercalifragilisticexpialidociouslyextraordinary", (300, 120), st)
    assert len(fit.lines) >= 2
    assert "".join(fit.lines) == "Supercalifragilisticexpialidociouslyextraordinary"
    # Words that fit are never cut.
    assert fit_caption("tiny words only", (300, 120), st).lines == ("tiny words only",)


def test_cjk_wraps_between_characters() -> None:
    text = "今日はとても楽しい一日でしたまた明日も会いましょう"
    st = style(max_size=40, min_size=24, max_lines=2)
    fit = fit_caption(text, (360, 120), st)
    layer = render_caption_layer(text, (360, 120), st)
    save("cjk.png", layer)
    assert len(fit.lines) == 2
    assert "".join(fit.lines) == text
    assert all(fit.lines)
    assert ink_bands(layer) == 2


def test_cjk_never_starts_a_line_with_closing_punctuation() -> None:
    text = "今日はとても楽しい一日でした。また明日も会いましょう！"
    fit = fit_caption(text, (360, 120), style(max_size=40, min_size=20, max_lines=2))
    assert all(line[0] not in "。！、" for line in fit.lines)


def test_hard_line_breaks_are_kept() -> None:
    fit = fit_caption("one\ntwo", BOX, style(size=30, max_lines=2))
    assert fit.lines == ("one", "two")
    with pytest.raises(CaptionRejected):
        fit_caption("one\ntwo\nthree", BOX, style(size=30, max_lines=2))
