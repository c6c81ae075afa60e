"""Caption bidi: right-to-left words and mixed-direction runs in display order (real fonts)."""

from __future__ import annotations

import numpy as np

from loopmark.renderer.caption import fit_caption, render_caption_layer
from tests.renderer.caption.helpers import BOX, alpha, ink_columns, save, style


def test_arabic_is_joined_and_right_to_left() -> None:
    st = style(size=40)
    word = "مرحبا"
    joined = render_caption_layer(word, BOX, st)
    save("arabic.png", joined)
    isolated = [render_caption_layer(letter, BOX, st) for letter in word]
    joined_width = len(ink_columns(joined))
    isolated_width = sum(len(ink_columns(layer)) for layer in isolated)
    # Joined (initial/medial/final) forms are narrower than the isolated letters side by side.
    assert joined_width < 0.9 * isolated_width
    # The last logical letter, alif (the tallest stroke), is drawn at the left end.
    a = alpha(joined)
    top_row = np.nonzero(a.max(axis=1))[0][0]
    alif_columns = np.nonzero(a[top_row])[0]
    columns = ink_columns(joined)
    assert alif_columns.max() < columns[0] + 0.25 * (columns[-1] - columns[0])


def test_mixed_direction_runs_are_ordered_by_the_bidi_algorithm() -> None:
    # A right-to-left paragraph: "Hello" (logically last) is drawn leftmost, the number right
    # of it, the Arabic word rightmost.
    fit = fit_caption("مرحبا 2024 Hello", (600, 120), style(size=40))
    x = {run.text.strip(): run.x for run in fit.runs if run.text.strip()}
    assert x["Hello"] < x["2024"] < x["مرحبا"]
    # A left-to-right paragraph keeps its English first on the left.
    fit = fit_caption("Hello שלום", (600, 120), style(size=40))
    x = {run.text.strip(): run.x for run in fit.runs if run.text.strip()}
    assert x["Hello"] < x["שלום"]
    assert [run.direction for run in fit.runs if run.text.strip() == "שלום"] == ["rtl"]
