"""Colours as templates write them (``#ffcc00``) and as the renderer uses them (RGB triples)."""

from __future__ import annotations

import re

Rgb = tuple[int, int, int]

# The leading "#" is optional: TOML authors write both.
HEX_COLOUR = re.compile(r"^#?([0-9a-fA-F]{6})$")


def parse_hex_colour(text: str) -> Rgb:
    """``#ffcc00`` (or ``ffcc00``, any case) → ``(255, 204, 0)``; ``ValueError`` otherwise."""
    match = HEX_COLOUR.match(text)
    if match is None:
        raise ValueError(f"not a colour like #ffcc00: {text!r}")
    digits = match.group(1)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


def format_hex_colour(colour: Rgb) -> str:
    """``(255, 204, 0)`` → ``#ffcc00``: the form templates, forms and the API use."""
    return "#{:02x}{:02x}{:02x}".format(*colour)
