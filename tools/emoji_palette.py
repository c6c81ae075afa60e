"""Derive renderer/caption_palette.py's EMOJI_COLOURS: k-means (k=16, fixed seeds) over the
opaque pixels of common Noto Color Emoji glyphs, as Pillow draws them for a caption.

Run when the emoji font or the list changes, and paste the printed tuple into the module:
    python tools/emoji_palette.py
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from loopmark.package_data import FONTS_DIR

EMOJI = (
    "😀😂🤣😊😍😘😎🤔😴🥳😭😡👍👏🙌🙏💪🔥✨🎉"
    "❤️🧡💛💚💙💜🖤💯⭐🌈☀️🌙☕🍺🍕🎂🐰🐶🐱🌸"
    "🌻🍀🎶💤💥💦👀🤯🥰😅😉🙃😱🤩🚀⚡🍩🍓🥑🌮🏆"
)
COLOURS = 16
SAMPLE = 40_000
ITERATIONS = 20
NOTO_EMOJI_PX = 109  # the bitmap font's one size


def emoji_pixels() -> np.ndarray:
    font = ImageFont.truetype(str(FONTS_DIR / "NotoColorEmoji.ttf"), NOTO_EMOJI_PX)
    pixels = []
    for glyph in EMOJI:
        image = Image.new("RGBA", (140, 140), (0, 0, 0, 0))
        ImageDraw.Draw(image).text((4, 4), glyph, font=font, embedded_color=True)
        rgba = np.asarray(image)
        pixels.append(rgba[rgba[..., 3] > 250][:, :3])
    return np.concatenate(pixels).astype(np.float32)


def kmeans(points: np.ndarray, k: int) -> list[tuple[int, int, int]]:
    centres = points[np.random.default_rng(0).choice(len(points), k, replace=False)].copy()
    for _ in range(ITERATIONS):
        nearest = ((points[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        for j in range(k):
            members = points[nearest == j]
            if len(members):
                centres[j] = members.mean(0)
    return sorted(tuple(int(v) for v in np.rint(c)) for c in centres)  # type: ignore[misc]


def main() -> None:
    pixels = emoji_pixels()
    sample = pixels[np.random.default_rng(1).choice(len(pixels), SAMPLE, replace=False)]
    print(tuple(kmeans(sample, COLOURS)))


if __name__ == "__main__":
    main()
