"""Hex colours: the one parser and formatter templates, forms and the API share."""

from __future__ import annotations

import pytest

from loopmark.renderer.colours import format_hex_colour, parse_hex_colour


@pytest.mark.parametrize(
    ("text", "rgb"),
    [("#ffcc00", (255, 204, 0)), ("FFCC00", (255, 204, 0)), ("#000000", (0, 0, 0))],
)
def test_parse_reads_six_hex_digits_with_or_without_hash(text: str, rgb: tuple[int, ...]) -> None:
    assert parse_hex_colour(text) == rgb


@pytest.mark.parametrize("text", ["", "#fff", "#ffcc0", "#ffcc000", "##ffcc00", "#ggcc00", "red"])
def test_parse_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hex_colour(text)


def test_format_is_lowercase_with_hash_and_inverts_parse() -> None:
    assert format_hex_colour((255, 204, 0)) == "#ffcc00"
    assert parse_hex_colour(format_hex_colour((1, 2, 3))) == (1, 2, 3)
