"""The caption policy: what a caption may contain, for the brand's presets and visitors' own words.

`normalize_caption` gives the canonical form used in render keys; `check_caption` returns that form
or raises `CaptionRejected` with a stable `code` and a short reason a visitor can act on.

Checks run cheapest first, so hostile input costs almost nothing:

1. Raw size. More than `MAX_RAW_CODE_POINTS` code points is refused with ``caption_too_long``
   before any normalisation or segmentation (a 100,000-character caption costs one ``len``).
2. NFC, whitespace folded (tabs, newlines and Unicode spaces become one space; ends stripped).
3. ``caption_empty``.
4. ``caption_control_character``: control (Cc) and format (Cf) characters and the other
   default-ignorable ("invisible") code points such as the Hangul filler, plus unassigned,
   private-use and surrogate code points. Exceptions, where the character is part of the text
   and not a disguise: ZWJ inside an emoji ZWJ sequence (👨‍👩‍👧), tag characters in an emoji
   tag sequence (🏴󠁧󠁢󠁳󠁣󠁴󠁿), variation selectors, and ZWNJ/ZWJ between letters of Arabic and
   Indic scripts (Persian and Hindi spelling needs them; they cannot hide Latin letters).
5. ``caption_too_long``: more than `MAX_CAPTION_GRAPHEMES` grapheme clusters (what a person calls
   characters: one family emoji or one flag is one).
6. ``caption_too_many_marks``: more than `MAX_MARKS_PER_GRAPHEME` combining marks on one cluster
   (Zalgo text). Emoji presentation selectors and the keycap mark are not counted.
7. ``caption_profanity``: better-profanity's word list plus the brand's banned words, matched on a
   *folded* copy of the caption: NFKC, casefolded, accents stripped, Cyrillic/Greek/small-capital
   look-alikes and regional-indicator letters mapped to Latin, leetspeak decoded (``sh1t``,
   ``$hit``, ``f*ck``), letters spaced out with any separator joined (``f u c k``, ``f.u.c.k``,
   ``f_u_c_k``), elongations collapsed (``fuuuuck``) and repeated words reduced
   (``shitshitshit``).

Matching trade-offs, chosen to keep false positives off legitimate captions:

- Words are matched whole, never as substrings, so "Scunthorpe", "assassin", "Dickens", "class",
  "cocktail", "Sussex" and "therapist" pass by construction (they are in the allow-list too, as a
  guard). The cost: compounds not in the list ("fuckyou" as one word) get through.
- Separators are removed only between *single* characters. "mass assembly", "this hit" and
  "Pen Island" pass; a word split into longer pieces ("fu ck", "sh it") is not caught, because
  joining real words ("Pen is", "an Al") would refuse normal sentences. Inside a run of spaced
  single letters, banned words of four letters or more are also found as substrings
  ("f u c k y o u").
- A run of three or more of one letter matches any run of that letter ("fuuuck", "asssss");
  a doubled letter matches a single one only for a vowel in words of four letters or more
  ("fuuck"), so that "good" is not "god", "woop" is not "wop" and "assess" is not "asses".
- Leetspeak is decoded only in tokens that contain a letter: "Room 455" stays a number.
- An allow-list entry (built in, or the brand's `WordLists.allowed`) exempts a word that would
  otherwise match; multi-word entries ("xXx_gamer") exempt the words where that phrase occurs.
  The brand's own banned words win over the built-in allow-list, and the brand's allow-list wins
  over everything: it is the admin's explicit decision.

better-profanity's own scanner compares every word against its 900 entries in Python (measured
30-100 ms for an 80-character caption), so its word list, taken from a private `Profanity`
instance, is compiled once into a hashed index; checking a caption then costs well under a
millisecond. Indexes are cached per `WordLists` and never mutated, so callers and threads share
nothing mutable.
"""

from __future__ import annotations

import functools
import itertools
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import regex
from better_profanity import Profanity

from loopmark.errors import N_, CaptionRejected

MAX_CAPTION_GRAPHEMES = 80
# A legitimate 80-cluster caption stays far below this: the longest emoji sequences are about 10
# code points, and a cluster may carry at most MAX_MARKS_PER_GRAPHEME marks. Anything longer is
# refused before NFC or segmentation, whose cost grows with the input.
MAX_RAW_CODE_POINTS = 1000
MAX_MARKS_PER_GRAPHEME = 4
# Leetspeak with ambiguous characters ("1" is i or l, "*" any vowel) multiplies spellings.
MAX_SPELLINGS_PER_WORD = 32
# Spaced-out letters are searched for banned words this long or longer: shorter ones ("ass",
# "cum") occur inside too many innocent letter sequences.
MIN_SUBSTRING_WORD_LETTERS = 4

# False positives of better-profanity's list (or of our folding) that a brand site should accept.
# Brands add their own with WordLists.allowed, and can ban any of these with WordLists.banned.
BUILTIN_ALLOWED: frozenset[str] = frozenset(
    {
        # Scunthorpe-type words, listed as a guard in case matching ever looks inside words.
        "Scunthorpe",
        "Penistone",
        "assassin",
        "assassins",
        "Dickens",
        "class",
        "classic",
        "grass",
        "cocktail",
        "cocktails",
        "Sussex",
        "Essex",
        "Middlesex",
        "therapist",
        "analysis",
        "xXx_gamer",
        # Innocent words on better-profanity's list, common in celebratory captions.
        "omg",
        "god",
        "sob",
        "xx",
        "xxx",
        "woop",
        "whoop",
        "gay",
        "gays",
        "lesbians",
        "virgin",
        "organ",
        "pot",
        "revue",
        "sandbar",
        "foobar",
        "maxi",
        "pawn",
        "seaman",
        "seamen",
        "strip",
        "stroke",
        "dummy",
        "doofus",
        "dopey",
        "weirdo",
        "woody",
        "willy",
        "paddy",
        "nappy",
        "whiz",
        "wazoo",
        "toots",
        "Len",
        "pollock",
    }
)

CAPTION_EMPTY_REASON = N_("Please write a caption.")
CAPTION_CONTROL_REASON = N_(
    "That caption contains an invisible or control character. Please retype it."
)
CAPTION_UNDISPLAYABLE_REASON = N_("That caption contains a character we can't display.")
CAPTION_MARKS_REASON = N_("That caption stacks too many accents on one letter.")
CAPTION_PROFANITY_REASON = N_("That caption contains a word we can't use.")


@dataclass(frozen=True)
class WordLists:
    """A brand's own words, on top of the built-in ones. Hashable, so compiled lists are cached."""

    banned: frozenset[str] = frozenset()  # the brand's own forbidden words
    allowed: frozenset[str] = frozenset()  # exceptions / false positives


# --- patterns (compiled once; regex is needed for \X and Unicode properties) ---------------------

# Tabs, newlines and Unicode spaces a visitor can type; other controls are refused, not folded.
_WHITESPACE_RUN = regex.compile(r"[\t\n\r\p{Zs}\u2028\u2029]+")
_SUSPECT = regex.compile(
    r"[\p{Cc}\p{Cf}\p{Cn}\p{Co}\p{Cs}\p{Default_Ignorable_Code_Point}--\p{Variation_Selector}]",
    regex.V1,
)
_UNDISPLAYABLE = regex.compile(r"[\p{Cn}\p{Co}\p{Cs}]")
_EMOJI_PART = r"\p{Extended_Pictographic}[\U0001F3FB-\U0001F3FF\uFE0E\uFE0F\u20E3]*"
_EMOJI_SEQUENCE = regex.compile(
    rf"{_EMOJI_PART}(?:\u200D{_EMOJI_PART})+"  # ZWJ sequence
    r"|\U0001F3F4[\U000E0020-\U000E007E]+\U000E007F"  # tag sequence (subdivision flags)
)
_JOINING_SCRIPTS = (
    r"[\p{Arabic}\p{Syriac}\p{Devanagari}\p{Bengali}\p{Gurmukhi}\p{Gujarati}\p{Oriya}\p{Tamil}"
    r"\p{Telugu}\p{Kannada}\p{Malayalam}\p{Sinhala}]"
)
_SCRIPT_JOINER = regex.compile(
    rf"(?<={_JOINING_SCRIPTS}\p{{M}}*)[\u200C\u200D](?={_JOINING_SCRIPTS})"
)
_GRAPHEME = regex.compile(r"\X")
_MARK = regex.compile(r"\p{M}")
# Marks that are part of an emoji's presentation, not diacritics stacked on a letter.
_EMOJI_PRESENTATION_MARK = regex.compile(
    r"(?<=\p{Emoji}[\U0001F3FB-\U0001F3FF]?)[\uFE0E\uFE0F]|(?<=[\p{Emoji}\uFE0F])\u20E3"
)

# Folding for the profanity check.
_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")
_REGIONAL_INDICATORS = regex.compile(r"[\U0001F1E6-\U0001F1FF]+")
_LEET_SYMBOLS = "@$!|+*€"
_TOKEN = regex.compile(r"[\p{L}\p{N}@$!|+*€]+")
_LETTER = regex.compile(r"\p{L}")
_REPEATED_UNIT = regex.compile(r"(.{2,}?)\1+")
_VOWELS = ("a", "e", "i", "o", "u")
_STRETCHED_VOWELS = frozenset("aeiouy")
# Characters read as letters inside a word. The first spelling is the canonical one.
_LEET: dict[str, tuple[str, ...]] = {
    "0": ("o",),
    "1": ("i", "l"),
    "3": ("e",),
    "4": ("a",),
    "5": ("s",),
    "7": ("t",),
    "8": ("b",),
    "9": ("g",),
    "@": ("a",),
    "$": ("s",),
    "!": ("i",),
    "|": ("l", "i"),
    "+": ("t",),
    "€": ("e",),
    "*": _VOWELS,
}
# Look-alikes that NFKC and accent stripping leave alone, after casefolding.
_CONFUSABLES = {
    # Cyrillic
    "а": "a",
    "в": "b",
    "е": "e",
    "ё": "e",
    "к": "k",
    "м": "m",
    "н": "h",
    "о": "o",
    "р": "p",
    "с": "c",
    "т": "t",
    "у": "y",
    "х": "x",
    "ѕ": "s",
    "і": "i",
    "ї": "i",
    "ј": "j",
    "ԁ": "d",
    "ԛ": "q",
    "ԝ": "w",
    "һ": "h",
    "ӏ": "l",
    "ү": "y",
    "ɡ": "g",
    # Greek
    "α": "a",
    "β": "b",
    "γ": "y",
    "ε": "e",
    "η": "n",
    "ι": "i",
    "κ": "k",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "σ": "o",
    "ς": "s",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    "ω": "w",
    # Latin letters without a decomposition
    "ł": "l",
    "ø": "o",
    "đ": "d",
    "ħ": "h",
    "ı": "i",
    "ŧ": "t",
    "ƒ": "f",
    "æ": "ae",
    "œ": "oe",
    "þ": "th",
    # Small capitals
    "ᴀ": "a",
    "ʙ": "b",
    "ᴄ": "c",
    "ᴅ": "d",
    "ᴇ": "e",
    "ꜰ": "f",
    "ɢ": "g",
    "ʜ": "h",
    "ɪ": "i",
    "ᴊ": "j",
    "ᴋ": "k",
    "ʟ": "l",
    "ᴍ": "m",
    "ɴ": "n",
    "ᴏ": "o",
    "ᴘ": "p",
    "ʀ": "r",
    "ꜱ": "s",
    "ᴛ": "t",
    "ᴜ": "u",
    "ᴠ": "v",
    "ᴡ": "w",
    "ʏ": "y",
    "ᴢ": "z",
}


# --- public API ----------------------------------------------------------------------------------


def normalize_caption(text: str) -> str:
    """NFC + whitespace folded (strip, runs of spaces/newlines -> one space). No checks.

    Used for render keys, so NFC and NFD input of the same caption give the same string.
    """
    return _WHITESPACE_RUN.sub(" ", unicodedata.normalize("NFC", text)).strip()


def check_caption(text: str, words: WordLists | None = None) -> str:
    """Return the normalised caption or raise `CaptionRejected` (see the module's docstring)."""
    if len(text) > MAX_RAW_CODE_POINTS:
        reason, params = _too_long_reason(None)
        raise CaptionRejected(reason, params=params, code="caption_too_long")
    caption = normalize_caption(text)
    if not caption:
        raise CaptionRejected(CAPTION_EMPTY_REASON, code="caption_empty")
    _check_characters(caption)
    clusters = _GRAPHEME.findall(caption)
    if len(clusters) > MAX_CAPTION_GRAPHEMES:
        reason, params = _too_long_reason(len(clusters))
        raise CaptionRejected(reason, params=params, code="caption_too_long")
    _check_marks(clusters)
    if _contains_profanity(caption, _compiled_words(words or WordLists())):
        raise CaptionRejected(CAPTION_PROFANITY_REASON, code="caption_profanity")
    return caption


# --- character checks ----------------------------------------------------------------------------


def _too_long_reason(graphemes: int | None) -> tuple[str, dict[str, int]]:
    """The reason (untranslated, see errors.N_) and its values."""
    if graphemes is None:
        reason = N_("Please keep it to %(max)d characters or fewer (this one is much longer).")
        return reason, {"max": MAX_CAPTION_GRAPHEMES}
    reason = N_("Please keep it to %(max)d characters or fewer (this one has %(count)d).")
    return reason, {"max": MAX_CAPTION_GRAPHEMES, "count": graphemes}


def _check_characters(caption: str) -> None:
    if not _SUSPECT.search(caption):
        return
    if _UNDISPLAYABLE.search(caption):
        raise CaptionRejected(CAPTION_UNDISPLAYABLE_REASON, code="caption_control_character")
    # Remove the joiners and tags that belong where they are; anything left is a disguise.
    legitimate_removed = _SCRIPT_JOINER.sub("", _EMOJI_SEQUENCE.sub("", caption))
    if _SUSPECT.search(legitimate_removed):
        raise CaptionRejected(CAPTION_CONTROL_REASON, code="caption_control_character")


def _check_marks(clusters: list[str]) -> None:
    for cluster in clusters:
        if len(cluster) <= MAX_MARKS_PER_GRAPHEME:
            continue  # too short to carry too many marks
        marks = len(_MARK.findall(cluster)) - len(_EMOJI_PRESENTATION_MARK.findall(cluster))
        if marks > MAX_MARKS_PER_GRAPHEME:
            raise CaptionRejected(CAPTION_MARKS_REASON, code="caption_too_many_marks")


# --- folding -------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """The copy the word lists are matched against: see steps in the module docstring."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = _IGNORABLE.sub("", folded)
    # Flag letters spell words ("🇫🇺🇨🇰"); each run of them becomes a word of its own.
    folded = _REGIONAL_INDICATORS.sub(
        lambda m: " " + "".join(chr(ord(c) - 0x1F1E6 + ord("a")) for c in m.group()) + " ",
        folded,
    )
    folded = unicodedata.normalize("NFD", folded)
    folded = "".join(c for c in folded if not unicodedata.category(c).startswith("M"))
    return "".join(_CONFUSABLES.get(c, c) for c in folded)


def _words(folded: str) -> list[tuple[str, bool]]:
    """Split into words; a run of two or more single characters becomes one (``f.u.c.k``).

    Returns (word, spelled_out) pairs; spelled_out marks a word joined from single characters.
    """
    words: list[tuple[str, bool]] = []
    singles: list[str] = []
    for token in _TOKEN.findall(folded):
        if len(token) == 1:
            singles.append(token)
            continue
        _flush_singles(singles, words)
        words.append((token, False))
    _flush_singles(singles, words)
    return words


def _flush_singles(singles: list[str], words: list[tuple[str, bool]]) -> None:
    if len(singles) == 1:
        words.append((singles[0], False))
    elif singles:
        words.append(("".join(singles), True))
    singles.clear()


def _spellings(word: str, *, strip_edges: bool = True) -> set[str]:
    """The letter strings a word may stand for, leetspeak decoded; empty when it has no letters.

    Leet symbols at the edges are also read as punctuation ("hell!" is "hell", "@ss" is "ass").
    """
    forms = {word}
    if strip_edges:
        forms.add(word.strip(_LEET_SYMBOLS))
    spellings: set[str] = set()
    for form in forms:
        if not _LETTER.search(form):
            continue
        options = [_LEET.get(c, (c,)) for c in form]
        count = 1
        for opts in options:
            count *= len(opts)
        if count > MAX_SPELLINGS_PER_WORD:
            options = [opts[:1] for opts in options]
        spellings.update("".join(p) for p in itertools.product(*options))
    return spellings


def _canonical(word: str) -> str:
    """One spelling of a word, for phrase matching: edges stripped, first leet reading."""
    core = word.strip(_LEET_SYMBOLS) or word
    if not _LETTER.search(core):
        return core
    return "".join(_LEET.get(c, (c,))[0] for c in core)


# A word with repeated letters collapsed, and the length of each run: ("fuck", (1, 4, 1, 1)).
_Runs = tuple[str, tuple[int, ...]]


def _runs(word: str) -> _Runs:
    """The word with repeated letters collapsed, and the length of each run."""
    letters: list[str] = []
    lengths: list[int] = []
    for letter, group in itertools.groupby(word):
        letters.append(letter)
        lengths.append(sum(1 for _ in group))
    return "".join(letters), tuple(lengths)


# --- word index ----------------------------------------------------------------------------------


class _WordIndex:
    """Single words keyed by their collapsed form, and phrases as tuples of canonical words."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._by_skeleton: dict[str, set[tuple[int, ...]]] = {}
        self.phrases: set[tuple[str, ...]] = set()
        self.long_words: set[str] = set()  # searched as substrings of spelled-out letters
        for entry in entries:
            words = _words(_fold(entry))
            if len(words) == 1:
                for spelling in _spellings(words[0][0], strip_edges=False):
                    skeleton, lengths = _runs(spelling)
                    self._by_skeleton.setdefault(skeleton, set()).add(lengths)
                    if len(spelling) >= MIN_SUBSTRING_WORD_LETTERS:
                        self.long_words.add(spelling)
            elif words:
                self.phrases.add(tuple(_canonical(word) for word, _ in words))
        self.long_word_lengths = sorted({len(w) for w in self.long_words})

    def matches_runs(self, runs: _Runs) -> bool:
        """Whether a spelling, given as `_runs`, is an entry, allowing elongated letters."""
        skeleton, lengths = runs
        if not self._by_skeleton:
            return False
        candidates = self._by_skeleton.get(skeleton)
        if not candidates:
            return False
        long_word = len(skeleton) >= 4
        return any(
            all(
                t == w or (t > w and (t >= 3 or (long_word and letter in _STRETCHED_VOWELS)))
                # Same skeleton, so the same number of runs.
                for letter, t, w in zip(skeleton, lengths, entry, strict=True)
            )
            for entry in candidates
        )


@dataclass(frozen=True)
class _CompiledWords:
    default: _WordIndex  # better-profanity's list
    default_allowed: _WordIndex  # built-in allow-list plus the brand's
    brand: _WordIndex
    brand_allowed: _WordIndex


@functools.cache
def _default_banned() -> _WordIndex:
    # A private instance: the module-level `better_profanity.profanity` is shared and mutable.
    return _WordIndex(str(word) for word in Profanity().CENSOR_WORDSET)


@functools.lru_cache(maxsize=64)
def _compiled_words(words: WordLists) -> _CompiledWords:
    return _CompiledWords(
        default=_default_banned(),
        default_allowed=_WordIndex(BUILTIN_ALLOWED | words.allowed),
        brand=_WordIndex(words.banned),
        brand_allowed=_WordIndex(words.allowed),
    )


# --- matching ------------------------------------------------------------------------------------


def _contains_profanity(caption: str, compiled: _CompiledWords) -> bool:
    words = _words(_fold(caption))
    if not words:
        return False
    canonical = [_canonical(word) for word, _ in words]
    # Spellings are worked out once and matched against every list.
    readings = [_readings(word) for word, _ in words]
    # (banned, allowed) pairs: the brand's banned words ignore the built-in allow-list.
    tiers = (
        (compiled.default, compiled.default_allowed),
        (compiled.brand, compiled.brand_allowed),
    )
    for banned, allowed in tiers:
        exempt = _phrase_cover(canonical, allowed.phrases)
        if _phrase_cover(canonical, banned.phrases) - exempt:
            return True
        for position, (_, spelled_out) in enumerate(words):
            if position in exempt:
                continue
            if _word_is_banned(readings[position], spelled_out, banned, allowed):
                return True
    return False


def _readings(word: str) -> list[tuple[str, list[_Runs]]]:
    """Each spelling of a word, with the runs of the forms matched: itself and its repeated unit."""
    readings = []
    for spelling in _spellings(word):
        forms = [_runs(spelling)]
        repeated = _REPEATED_UNIT.fullmatch(spelling)
        if repeated:
            forms.append(_runs(repeated.group(1)))  # "shitshitshit" -> "shit"
        readings.append((spelling, forms))
    return readings


def _word_is_banned(
    readings: list[tuple[str, list[_Runs]]],
    spelled_out: bool,
    banned: _WordIndex,
    allowed: _WordIndex,
) -> bool:
    for spelling, forms in readings:
        for runs in forms:
            if banned.matches_runs(runs) and not allowed.matches_runs(runs):
                return True
        if spelled_out and not allowed.matches_runs(forms[0]) and _has_long_word(spelling, banned):
            return True
    return False


def _has_long_word(letters: str, banned: _WordIndex) -> bool:
    """Whether a spelled-out run ("fuckyou") contains a banned word of four letters or more."""
    variants = {letters, _runs(letters)[0]}
    for text in variants:
        for length in banned.long_word_lengths:
            for start in range(len(text) - length + 1):
                if text[start : start + length] in banned.long_words:
                    return True
    return False


def _phrase_cover(canonical: list[str], phrases: set[tuple[str, ...]]) -> set[int]:
    """Positions of words that are part of an occurrence of one of the phrases."""
    covered: set[int] = set()
    if not phrases:
        return covered
    lengths = {len(p) for p in phrases}
    for length in lengths:
        for start in range(len(canonical) - length + 1):
            if tuple(canonical[start : start + length]) in phrases:
                covered.update(range(start, start + length))
    return covered
