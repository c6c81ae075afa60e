"""Draw the brand's raster icons from the favicon's shapes (static/img/favicon.svg) with Pillow.

Run once when the mark changes, and commit the images (no external assets, no work at run time):
    python tools/make_icons.py
Writes favicon.ico (16, 32, 48 px), apple-touch-icon.png (180 px, opaque: iOS rounds it),
icon-192.png and icon-512.png (rounded, for the web manifest) and icon-maskable-512.png (full
bleed, the mark inside the 80 % safe zone).
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "loopmark" / "static" / "img"
PURPLE, CREAM, ORANGE, TEAL = "#5b2e91", "#fff7ec", "#ff7a1a", "#009688"
SUPERSAMPLE = 4  # drawn larger, then scaled down: Pillow's shapes have no anti-aliasing
VIEWBOX = 64  # the SVG's coordinate system

Point = tuple[float, float]


def _rotated_square(x: float, y: float, side: float, degrees: float) -> list[Point]:
    cx, cy = x + side / 2, y + side / 2
    angle = math.radians(degrees)
    corners = [(x, y), (x + side, y), (x + side, y + side), (x, y + side)]
    return [
        (
            cx + (px - cx) * math.cos(angle) - (py - cy) * math.sin(angle),
            cy + (px - cx) * math.sin(angle) + (py - cy) * math.cos(angle),
        )
        for px, py in corners
    ]


def draw_mark(size: int, *, rounded: bool, mark_scale: float = 1.0) -> Image.Image:
    """The mark on its purple tile, ``size`` pixels square (RGBA)."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    unit = big / VIEWBOX
    if rounded:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=16 * unit, fill=PURPLE)
    else:
        draw.rectangle((0, 0, big, big), fill=PURPLE)
    offset = VIEWBOX * (1 - mark_scale) / 2

    def at(points: list[Point]) -> list[Point]:
        return [
            ((offset + x * mark_scale) * unit, (offset + y * mark_scale) * unit) for x, y in points
        ]

    glass = [
        (20, 18),
        (44, 18),
        (41, 50),
        (39.5, 52.8),
        (37, 53.6),
        (27, 53.6),
        (24.5, 52.8),
        (23, 50),
    ]
    brew = [
        (21.6, 30),
        (42.4, 30),
        (40.5, 50),
        (39.4, 51.6),
        (38, 52.2),
        (26, 52.2),
        (24.6, 51.6),
        (23.5, 50),
    ]
    draw.polygon(at(glass), fill=CREAM)
    draw.polygon(at(brew), fill=ORANGE)
    draw.polygon(at(_rotated_square(26, 24, 6, 12)), fill=TEAL)
    draw.polygon(at(_rotated_square(33, 22, 6, -10)), fill=TEAL)
    straw = at([(38, 10), (34, 24)])
    width = 3 * unit * mark_scale
    draw.line(straw, fill=CREAM, width=round(width))
    for x, y in straw:  # round caps
        draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=CREAM)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    draw_mark(180, rounded=False).convert("RGB").save(OUT / "apple-touch-icon.png", optimize=True)
    draw_mark(192, rounded=True).save(OUT / "icon-192.png", optimize=True)
    draw_mark(512, rounded=True).save(OUT / "icon-512.png", optimize=True)
    draw_mark(512, rounded=False, mark_scale=0.75).save(
        OUT / "icon-maskable-512.png", optimize=True
    )
    draw_mark(256, rounded=True).save(OUT / "favicon.ico", sizes=[(16, 16), (32, 32), (48, 48)])
    for name in (
        "apple-touch-icon.png",
        "icon-192.png",
        "icon-512.png",
        "icon-maskable-512.png",
        "favicon.ico",
    ):
        print(f"{OUT / name}: {(OUT / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
