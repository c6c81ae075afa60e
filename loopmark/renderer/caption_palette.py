"""Palette room for the caption's own colours: the template's fill and stroke, and the colours
of colour emoji, which a clip's palette rarely holds.

A template's 256-entry palette is built once, from the clip's frames (prepare.py), before any
caption exists. Caption pixels are then mapped to their nearest entry, so an emoji whose colours
the clip lacks changes colour: on *Wake up* (greens and greys) the yellow core of 🔥, (248, 202,
40), came out as the pale green (196, 219, 71), 62 RGB units away, and emoji pixels were 51 units
off on average. Keeping EMOJI_COLOURS in the palette as well brings the core to 9 units and emoji
pixels to 16 on average, for 0.16 dB of the clip's PSNR (35.30 → 35.14 dB, 16 fewer entries for
the clip); measured with tools/emoji_palette.py's colours on Wake up.

Pure data and two functions; prepare.py passes ``caption_reserved_colours(template.style,
emoji=template.draws_emoji)`` as ``build_palette``'s reserved colours (that changes prepared
bytes: PREPARE_VERSION). A template whose captions are presets without emoji never draws one, so
its clip keeps those 16 entries: measured on *Head scratch* (prepared frames alone), SSIM 0.9601
→ 0.9621, about what 8 % more palette is worth.
"""

from __future__ import annotations

from collections.abc import Iterable

import regex

from loopmark.renderer.caption import TextStyle
from loopmark.renderer.colours import Rgb

# k-means (k=16) over the opaque pixels of 62 common Noto Color Emoji glyphs as Pillow draws
# them (tools/emoji_palette.py): mostly the yellows and oranges of faces and fire, then red,
# pink, purple, blue, green, brown and near-white.
EMOJI_COLOURS: tuple[Rgb, ...] = (
    (49, 154, 225),
    (85, 64, 47),
    (133, 173, 51),
    (156, 103, 185),
    (224, 142, 132),
    (226, 141, 12),
    (234, 223, 224),
    (238, 65, 50),
    (239, 183, 73),
    (247, 168, 38),
    (250, 175, 2),
    (251, 190, 34),
    (251, 201, 43),
    (252, 230, 137),
    (253, 220, 50),
    (254, 134, 4),
)


# Anything a caption font might draw as a colour glyph (wider than the layout's own test, on
# purpose: a pictograph that stays text costs the clip 16 entries, nothing worse).
_EMOJI_RE = regex.compile(
    r"[\p{Extended_Pictographic}\p{Emoji_Presentation}\p{Regional_Indicator}\uFE0F\u20E3]"
)


def may_draw_emoji(caption_mode: str, captions: Iterable[str]) -> bool:
    """Whether a template's captions can hold emoji: a visitor's own words always can; a
    presets-only template's only when one of its predefined captions has one."""
    return caption_mode != "presets" or any(_EMOJI_RE.search(caption) for caption in captions)


def caption_reserved_colours(style: TextStyle, *, emoji: bool = True) -> list[Rgb]:
    """The palette entries kept for captions: fill, stroke, then (with ``emoji``) the emoji
    colours, each once."""
    reserved: list[Rgb] = []
    for colour in (style.fill, style.stroke, *(EMOJI_COLOURS if emoji else ())):
        if colour not in reserved:
            reserved.append(colour)
    return reserved
