"""Caption bidi and line breaking: our hand-written rules against PyICU and python-bidi.

Run ``python -m bench.caption_libraries`` with the libraries importable (they are not
dependencies: ``pip install --target /tmp/caption-libs pyicu python-bidi`` and
``PYTHONPATH=/tmp/caption-libs``; PyICU builds from source against ``libicu-dev``). Over a corpus
of the test captions, the scripts SECURITY.md calls legitimate and random mixes of them, only
captions the caption policy accepts (what reaches the layout), it counts paragraphs where each
library gives the same result as ours, per grapheme cluster:

- bidi levels (UAX #9) and the visual order of a whole line (rule L2);
- line-break opportunities (UAX #14 in ICU; python-bidi has none);

prints examples of each kind of difference, and times each side.
"""

from __future__ import annotations

import argparse
import collections
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from loopmark.errors import CaptionRejected
from loopmark.renderer.caption.bidi import bidi_class, bidi_levels, visual_order
from loopmark.renderer.caption.linebreak import break_opportunities, paragraphs
from loopmark.renderer.caption_policy import check_caption

# The captions of tests/renderer (caption layout and pinned renders).
TEST_CAPTIONS = [
    "Hello, world!",
    "مرحبا 👋 Hop",
    "Müller & Łukasz",
    "When the weekend finally arrives and the coffee is still hot",
    "A medium caption, long enough to shrink",
    "Supercalifragilisticexpialidociouslyextraordinary",
    "مرحبا",
    "مرحبا 2024 Hello",
    "Hello שלום",
    "क्या",
    "今日はとても楽しい一日でしたまた明日も会いましょう",
    "今日はとても楽しい一日でした。また明日も会いましょう！",
    "👩\u200d👩\u200d👧",
    "Hello 中文",
    "Same caption 🎉 مرحبا 中文",
    "Wait, what day is it?",
    "Did I leave the oven on?",
    "I can't even right now",
    "Hmm… one more cup?",
    "Happy birthday to the best friend in the world",
    "Best day ever 🎉",
    "今日はとても楽しい一日でした。",
    "مرحبا بكم في عالم الصور المتحركة الجميلة",
    "Coffee first, then we talk about it",
    "Supercalifragilisticexpialidocious is a word",
    "Happy birthday to the best friend 🎉 in the world",
]
# SECURITY.md's legitimate scripts, written as visitors would.
SCRIPT_CAPTIONS = [
    "Alles Gute, Müller!",
    "Łukasz świętuje urodziny",
    "عيد ميلاد سعيد يا أحمد!",
    "שבת שלום לכולם",
    "生日快乐！我们一起去吃饭吧。",
    "お誕生日おめでとう、ゆっくり休んでね。",
    "생일 축하해요, 친구!",
    "Chúc mừng sinh nhật, bạn thân!",
    "สุขสันต์วันเกิดนะเพื่อนรัก",
    "जन्मदिन की हार्दिक शुभकामनाएँ!",
    "Family time 👨\u200d👩\u200d👧\u200d👦 and 👍🏽 👋🏿 🇫🇷 ❤️",
    "الموعد 12:30 في 2024/05/01",
    "המחיר 50% הנחה ב-3.5 ₪",
    "Meet at 10 PM — שלום (עולם) and مرحبا!",
    "The word «مرحبا» means hello.",
    "C'est l'été ! On y va ?",
    "well-known e-mail/address, 10-20 km",
]
POOLS = [
    ["Hello", "Müller", "Łukasz", "coffee", "well-known", "it's", "C'est", "e-mail"],
    ["مرحبا", "بكم", "السلام", "عليكم", "أحمد", "٢٠٢٤"],
    ["שלום", "עולם", "תודה", "רבה"],
    ["今日は", "楽しい", "生日快乐", "ありがとう", "생일", "ゃっ"],
    ["Chúc", "mừng", "sinh", "nhật", "Việt"],
    ["สวัสดี", "ครับ", "เพื่อน"],
    ["नमस्ते", "क्या", "दोस्त"],
    ["🎉", "👍🏽", "👩\u200d👩\u200d👧", "🇫🇷", "❤️", "👋"],
    ["2024", "3.5", "12:30", "50%", "$20", "+1", "-5", "1,000", "#1"],
    ["(", ")", "!", "?", ",", ".", "«", "»", "—", "-", "/", "…", "“", "”", ":", "&"],
]


def random_captions(count: int, seed: int = 8) -> list[str]:
    rng = random.Random(seed)
    captions = []
    for _ in range(count):
        pools = rng.sample(POOLS, rng.randint(1, 4))
        tokens = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 8))]
        captions.append("".join(t + rng.choice([" ", " ", " ", ""]) for t in tokens).strip())
    return captions


def corpus(random_count: int) -> list[list[str]]:
    """Grapheme clusters of every paragraph of every caption the policy accepts."""
    result: list[list[str]] = []
    for caption in [*TEST_CAPTIONS, *SCRIPT_CAPTIONS, *random_captions(random_count)]:
        try:
            accepted = check_caption(caption)
        except CaptionRejected:
            continue
        result.extend(p for p in paragraphs(accepted) if p)
    return result


# ---------------------------------------------------------------------------------------------
# Our rules


def ours_levels(clusters: Sequence[str]) -> list[int]:
    return bidi_levels([bidi_class(c) for c in clusters])


def ours_order(clusters: Sequence[str]) -> list[int]:
    return visual_order(ours_levels(clusters))


def ours_breaks(clusters: Sequence[str]) -> list[bool]:
    return break_opportunities(clusters)[:-1]


# ---------------------------------------------------------------------------------------------
# Libraries, mapped onto clusters (ICU counts UTF-16 units)


def utf16_starts(clusters: Sequence[str]) -> list[int]:
    """UTF-16 offset of each cluster's start, then of the end."""
    starts, offset = [], 0
    for cluster in clusters:
        starts.append(offset)
        offset += len(cluster.encode("utf-16-le")) // 2
    return [*starts, offset]


def icu_levels(clusters: Sequence[str]) -> list[int]:
    import icu  # type: ignore[import-not-found]

    bidi = icu.Bidi()
    bidi.setPara(icu.UnicodeString("".join(clusters)), icu.Bidi.DEFAULT_LTR)
    levels = bidi.getLevels()
    return [levels[start] for start in utf16_starts(clusters)[:-1]]


def icu_order(clusters: Sequence[str]) -> list[int]:
    import icu

    bidi = icu.Bidi()
    bidi.setPara(icu.UnicodeString("".join(clusters)), icu.Bidi.DEFAULT_LTR)
    visual_map = bidi.getVisualMap()  # visual position -> logical UTF-16 index
    starts = utf16_starts(clusters)
    owner = [i for i in range(len(clusters)) for _ in range(starts[i], starts[i + 1])]
    order: list[int] = []
    for logical in visual_map:
        if owner[logical] not in order:
            order.append(owner[logical])
    return order


def icu_breaks(clusters: Sequence[str]) -> list[bool]:
    import icu

    iterator = icu.BreakIterator.createLineInstance(icu.Locale.getRoot())
    iterator.setText("".join(clusters))
    boundaries = set(iterator)
    return [end in boundaries for end in utf16_starts(clusters)[1:-1]]


def python_bidi_levels(clusters: Sequence[str]) -> list[int]:
    from bidi import algorithm  # type: ignore[import-not-found]

    text = "".join(clusters)
    storage = algorithm.get_empty_storage()
    storage["base_level"] = algorithm.get_base_level(text)
    storage["base_dir"] = ("L", "R")[storage["base_level"]]
    algorithm.get_embedding_levels(text, storage, debug=False)
    algorithm.explicit_embed_and_overrides(storage, debug=False)
    algorithm.resolve_weak_types(storage, debug=False)
    algorithm.resolve_neutral_types(storage, debug=False)
    algorithm.resolve_implicit_levels(storage, debug=False)
    # X9 drops BN characters (ZWJ, variation selectors): a cluster takes its first kept one's level.
    kept = iter(ch["level"] for ch in storage["chars"])
    levels: list[int] = []
    for cluster in clusters:
        own = [next(kept) for ch in cluster if algorithm.bidirectional(ch) != "BN"]
        levels.append(own[0] if own else levels[-1] if levels else storage["base_level"])
    return levels


def python_bidi_display(clusters: Sequence[str]) -> str:
    from bidi import get_display

    return str(get_display("".join(clusters)))


def ours_display(clusters: Sequence[str]) -> str:
    """What python-bidi's get_display gives: code points in visual order, brackets unmirrored."""
    levels = [lv for c, lv in zip(clusters, ours_levels(clusters), strict=True) for _ in c]
    return "".join("".join(clusters)[i] for i in visual_order(levels))


# ---------------------------------------------------------------------------------------------
# Comparing


def compare(
    name: str,
    paras: Sequence[Sequence[str]],
    ours: Callable[[Sequence[str]], Any],
    theirs: Callable[[Sequence[str]], Any],
    examples: int,
    describe: Callable[[Sequence[str], Any, Any], str] = lambda c, a, b: "order differs",
) -> None:
    same, kinds = 0, collections.Counter[str]()
    shown: dict[str, str] = {}
    for clusters in paras:
        a, b = ours(clusters), theirs(clusters)
        if a == b:
            same += 1
            continue
        kind = describe(clusters, a, b)
        kinds[kind] += 1
        shown.setdefault(kind, "".join(clusters))
    t_ours, t_lib = timed(ours, paras), timed(theirs, paras)
    print(f"\n## {name}: {same}/{len(paras)} paragraphs identical, {len(paras) - same} differ")
    print(f"   time over the corpus: ours {t_ours * 1e3:.1f} ms, library {t_lib * 1e3:.1f} ms")
    verdicts = collections.Counter(kind.rpartition(": ")[2] for kind in kinds.elements())
    if len(verdicts) > 1:
        print("   " + ", ".join(f"{n} × {verdict}" for verdict, n in verdicts.most_common()))
    for kind, count in kinds.most_common(examples):
        print(f"   {count:5d} × {kind}\n           e.g. {shown[kind]!r}")


def timed(function: Callable[[Sequence[str]], Any], paras: Sequence[Sequence[str]]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for clusters in paras:
            function(clusters)
        best = min(best, time.perf_counter() - start)
    return best


def break_difference(clusters: Sequence[str], ours: list[bool], theirs: list[bool]) -> str:
    """The first differing boundary, as line-break classes: 'AL|ID: ours break, ICU none'."""
    import icu

    i = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)

    def lb(ch: str) -> str:
        value = icu.Char.getIntPropertyValue(ord(ch), icu.UProperty.LINE_BREAK)
        return str(
            icu.Char.getPropertyValueName(
                icu.UProperty.LINE_BREAK, value, icu.UPropertyNameChoice.SHORT_PROPERTY_NAME
            )
        )

    here, after = clusters[i], clusters[i + 1]
    verdict = "ours break, ICU none" if ours[i] else "ICU break, ours none"
    return f"{lb(here[-1])}|{lb(after[0])} ({here}|{after}): {verdict}"


def level_difference(clusters: Sequence[str], ours: list[int], theirs: list[int]) -> str:
    i = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)
    classes = "".join(f" {bidi_class(c)}" for c in clusters[max(0, i - 1) : i + 2])
    return f"classes{classes} around {clusters[i]!r}: ours {ours[i]}, library {theirs[i]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=3000, help="random captions (default 3000)")
    parser.add_argument("--examples", type=int, default=12, help="kinds of difference shown")
    args = parser.parse_args()
    paras = corpus(args.random)
    print(f"# Corpus: {len(paras)} paragraphs the caption policy accepts")
    try:
        import icu

        print(f"\n# PyICU {icu.VERSION}, ICU {icu.ICU_VERSION}, Unicode {icu.UNICODE_VERSION}")
        compare("ICU bidi levels", paras, ours_levels, icu_levels, args.examples, level_difference)
        compare("ICU visual order", paras, ours_order, icu_order, args.examples)
        compare("ICU line breaks", paras, ours_breaks, icu_breaks, args.examples, break_difference)
    except ImportError:
        print("\n# PyICU not importable: skipped")
    try:
        import bidi

        print(f"\n# python-bidi {bidi.VERSION}")
        compare(
            "python-bidi levels (pure-Python algorithm)",
            paras,
            ours_levels,
            python_bidi_levels,
            args.examples,
            level_difference,
        )
        compare(
            "python-bidi get_display (Rust)",
            paras,
            ours_display,
            python_bidi_display,
            args.examples,
            lambda c, a, b: f"ours {a!r} lib {b!r}",
        )
    except ImportError:
        print("\n# python-bidi not importable: skipped")


if __name__ == "__main__":
    main()
