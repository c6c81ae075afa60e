"""Caption bidi: embedding levels and visual order, the implicit part of UAX #9 on clusters.

Rules W1–W7, N1–N2 and I1–I2 for one paragraph, then L2 for one line. Explicit embeddings,
overrides and isolates are never honoured (the caption policy rejects them; a right-to-left
override could hide words), so a paragraph has one embedding level and no X rules are needed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

_RTL_CLASSES = frozenset({"R", "AL"})
# Explicit embeddings, overrides and isolates: if one slips through the caption policy it is
# treated as a neutral.
_EXPLICIT_CLASSES = frozenset({"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})


def bidi_class(cluster: str) -> str:
    """The bidi class of a grapheme cluster: its first character's, explicit ones neutral."""
    kind = unicodedata.bidirectional(cluster[0])
    if kind in _EXPLICIT_CLASSES or kind == "NSM" and len(cluster) == 1:
        return "ON"
    return kind or "ON"


def paragraph_level(classes: Sequence[str]) -> int:
    """Rules P2–P3: the first strong class sets the paragraph's direction (0 = LTR, 1 = RTL)."""
    for kind in classes:
        if kind == "L":
            return 0
        if kind in _RTL_CLASSES:
            return 1
    return 0


def bidi_levels(classes: Sequence[str]) -> list[int]:
    """Resolved embedding level of each cluster of one paragraph, given their bidi classes."""
    base = paragraph_level(classes)
    sos = "R" if base % 2 else "L"
    types = _resolve_weak(list(classes), sos)
    types = _resolve_neutrals(types, sos)
    return [_implicit_level(base, kind) for kind in types]


def visual_order(levels: Sequence[int]) -> list[int]:
    """Rule L2 over runs: indices of `levels` in display order, left to right."""
    order = list(range(len(levels)))
    if not levels:
        return order
    highest = max(levels)
    lowest_odd = min((lv for lv in levels if lv % 2), default=highest + 1)
    for level in range(highest, lowest_odd - 1, -1):
        for start, end in _spans([levels[i] >= level for i in order]):
            order[start:end] = reversed(order[start:end])
    return order


# ---------------------------------------------------------------------------------------------
# Weak types (W1–W7)


def _resolve_weak(types: list[str], sos: str) -> list[str]:
    _nsm_take_previous(types, sos)
    _numbers_after_arabic(types, sos)
    types = ["R" if t == "AL" else t for t in types]  # W3
    _join_separators(types)
    _join_terminators(types)
    types = ["ON" if t in ("ES", "ET", "CS") else t for t in types]  # W6
    _numbers_after_ltr(types, sos)
    return types


def _nsm_take_previous(types: list[str], sos: str) -> None:
    """W1: a lone non-spacing mark takes the type of what precedes it."""
    for i, kind in enumerate(types):
        if kind == "NSM":
            types[i] = types[i - 1] if i else sos


def _numbers_after_arabic(types: list[str], sos: str) -> None:
    """W2: European numbers after Arabic letters are Arabic numbers."""
    last_strong = sos
    for i, kind in enumerate(types):
        if kind in ("L", "R", "AL"):
            last_strong = kind
        elif kind == "EN" and last_strong == "AL":
            types[i] = "AN"


def _join_separators(types: list[str]) -> None:
    """W4: a single separator between two numbers of the same kind joins them."""
    for i in range(1, len(types) - 1):
        before, here, after = types[i - 1], types[i], types[i + 1]
        if here == "ES" and before == after == "EN":
            types[i] = "EN"
        elif here == "CS" and before == after and before in ("EN", "AN"):
            types[i] = before


def _join_terminators(types: list[str]) -> None:
    """W5: terminators (%, $, °) next to European numbers are numbers."""
    for start, end in _spans([kind == "ET" for kind in types]):
        if (start > 0 and types[start - 1] == "EN") or (end < len(types) and types[end] == "EN"):
            types[start:end] = ["EN"] * (end - start)


def _numbers_after_ltr(types: list[str], sos: str) -> None:
    """W7: European numbers in a left-to-right context are left-to-right."""
    last_strong = sos
    for i, kind in enumerate(types):
        if kind in ("L", "R"):
            last_strong = kind
        elif kind == "EN" and last_strong == "L":
            types[i] = "L"


# ---------------------------------------------------------------------------------------------
# Neutral types (N1–N2) and implicit levels (I1–I2)


def _strong(kind: str) -> str | None:
    """Direction a resolved type pushes neutrals towards; numbers count as R (N1)."""
    if kind == "L":
        return "L"
    if kind in ("R", "EN", "AN"):
        return "R"
    return None


def _resolve_neutrals(types: list[str], sos: str) -> list[str]:
    """N1, N2: neutrals between two strongs of one direction take it; others the paragraph's."""
    resolved = list(types)
    for start, end in _spans([_strong(kind) is None for kind in types]):
        before = _strong(types[start - 1]) if start > 0 else sos
        after = _strong(types[end]) if end < len(types) else sos
        fill = before if before == after else sos
        resolved[start:end] = [fill or sos] * (end - start)
    return resolved


def _implicit_level(base: int, kind: str) -> int:
    if base % 2 == 0:
        return base + (1 if kind == "R" else 2 if kind in ("AN", "EN") else 0)
    return base + (1 if kind in ("L", "EN", "AN") else 0)


def _spans(inside: Sequence[bool]) -> list[tuple[int, int]]:
    """Maximal [start, end) spans of consecutive True values."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for i, flag in enumerate(inside):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, len(inside)))
    return spans
