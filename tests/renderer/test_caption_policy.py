"""The caption policy: a decision table of evasions refused and legitimate text accepted."""

from __future__ import annotations

import unicodedata

import pytest

from loopmark.errors import BadInput, CaptionRejected
from loopmark.renderer.caption_policy import (
    MAX_CAPTION_GRAPHEMES,
    MAX_RAW_CODE_POINTS,
    WordLists,
    check_caption,
    normalize_caption,
)

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧, 5 code points, 1 grapheme
SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"

PROFANITY = "caption_profanity"
CONTROL = "caption_control_character"
MARKS = "caption_too_many_marks"
TOO_LONG = "caption_too_long"
EMPTY = "caption_empty"

DECISIONS = [
    # --- legitimate text in many scripts ---
    ("Müller", None),
    ("Łukasz", None),
    ("Ça va?", None),
    ("Straße", None),
    ("مرحبا بالعالم", None),
    ("هَذَا جَمِيلٌ", None),  # Arabic with harakat
    ("שלום עולם", None),
    ("你好世界", None),
    ("こんにちは", None),
    ("안녕하세요 세계", None),
    ("Tiếng Việt", None),
    ("Việt Nam", None),
    ("नमस्ते", None),
    ("क्\u200dष", None),  # Devanagari with ZWJ between letters
    ("می\u200cخواهم", None),  # Persian needs ZWNJ
    ("สวัสดีครับ", None),
    ("Привет, мир", None),
    ("Γειά σου Κόσμε", None),
    # --- emoji ---
    ("🎉🐰", None),
    (FAMILY, None),
    ("🇫🇷", None),
    ("🇫🇷🇩🇪🇮🇹", None),
    (SCOTLAND, None),
    ("🏳️\u200d🌈 👩🏽\u200d❤️\u200d💋\u200d👨🏻 #️⃣", None),
    # --- hostile-looking but legitimate punctuation ---
    ('It\'s 100% fun: C:\\ "quoted" %{eif:7*6:d}', None),
    ("drawtext=textfile=/etc/passwd", None),
    ("<script>alert(1)</script>", None),
    ("Room 455", None),
    # --- words that contain or resemble a banned word ---
    ("Scunthorpe", None),
    ("assassin", None),
    ("Dickens", None),
    ("class", None),
    ("grass", None),
    ("cocktail", None),
    ("Sussex", None),
    ("therapist", None),
    ("xXx_gamer", None),
    ("mass assembly", None),
    ("this hit", None),
    ("Pen Island", None),
    ("good", None),
    ("woop woop", None),
    ("Oh my gooood", None),
    ("love you xx", None),
    ("c l a s s", None),
    ("as", None),
    ("bob", None),
    ("assess", None),
    ("Passion", None),
    ("Hitchcock", None),
    ("Shitake mushrooms", None),
    ("Arsenal FC", None),
    ("Gr8 night, see u l8r", None),
    ("i <3 u", None),
    ("R.I.P", None),
    ("U.S.A.", None),
    # --- profanity and its disguises ---
    ("fuck", PROFANITY),
    ("FUCK", PROFANITY),
    ("what the fuck!", PROFANITY),
    ("f u c k", PROFANITY),
    ("f.u.c.k", PROFANITY),
    ("f_u_c_k", PROFANITY),
    ("f-u-c-k", PROFANITY),
    ("f🍑u🍑c🍑k", PROFANITY),
    ("f u c k y o u", PROFANITY),
    ("fuuuuck", PROFANITY),
    ("fuuck", PROFANITY),
    ("shitshitshit", PROFANITY),
    ("shit shit shit", PROFANITY),
    ("ѕһіt", PROFANITY),  # Cyrillic look-alikes
    ("fυck", PROFANITY),  # Greek upsilon
    ("ｆｕｃｋ", PROFANITY),  # fullwidth
    ("𝐟𝐮𝐜𝐤", PROFANITY),  # mathematical bold
    ("ꜰᴜᴄᴋ", PROFANITY),  # small capitals
    ("fück", PROFANITY),
    ("fu\u0308ck", PROFANITY),  # the same, decomposed
    ("sh1t", PROFANITY),
    ("5h1t", PROFANITY),
    ("$hit", PROFANITY),
    ("sh!t", PROFANITY),
    ("f*ck", PROFANITY),
    ("@ss", PROFANITY),
    ("a55", PROFANITY),
    ("ass", PROFANITY),
    ("boob", PROFANITY),
    ("blow job", PROFANITY),
    ("🇫🇺🇨🇰", PROFANITY),  # regional indicator letters
    # --- invisible and control characters ---
    ("\u202ekcuf", CONTROL),  # right-to-left override
    ("f\u200bu\u200bc\u200bk", CONTROL),  # zero-width space
    ("hello\u200cworld", CONTROL),  # ZWNJ between Latin letters
    ("a\u200db", CONTROL),  # ZWJ outside an emoji sequence
    (FAMILY + "\u200d", CONTROL),  # dangling ZWJ
    ("abc\u2066def\u2069", CONTROL),  # bidi isolate
    ("abc\u200fdef", CONTROL),  # right-to-left mark
    ("abc\u061cdef", CONTROL),  # Arabic letter mark
    ("word\u2060joiner", CONTROL),
    ("\ufeffbom", CONTROL),
    ("soft\u00adhyphen", CONTROL),
    ("tag\U000e0067s", CONTROL),  # tag character outside a flag
    ("filler\u3164name", CONTROL),  # Hangul filler renders as nothing
    ("bell\x07", CONTROL),
    ("nul\x00", CONTROL),
    ("vertical\x0btab", CONTROL),
    ("next\x85line", CONTROL),
    ("private\ue000use", CONTROL),
    ("unassigned\U000e0080", CONTROL),
    ("surrogate\ud800", CONTROL),
    # --- combining marks ---
    ("Z" + "\u0301\u0302\u0303\u0304\u0306\u0307", MARKS),
    ("Z̸̢̛̝͚̈́a̴̧̛l̷̨̛g̸̛̣o̶̡̦", MARKS),
    ("Z" + "\u0302\u0303\u0304\u0306", None),  # four marks is the limit
    ("\u0301\u0302\u0303\u0304\u0306abc", MARKS),  # marks with no base letter
    # --- emptiness ---
    ("", EMPTY),
    ("   ", EMPTY),
    ("\n\t \r\n", EMPTY),
    ("\u3000\u00a0", EMPTY),
]


@pytest.mark.parametrize(("caption", "expected"), DECISIONS, ids=[repr(c) for c, _ in DECISIONS])
def test_decision_table(caption: str, expected: str | None) -> None:
    if expected is None:
        assert check_caption(caption) == normalize_caption(caption)
    else:
        with pytest.raises(CaptionRejected) as caught:
            check_caption(caption)
        assert caught.value.code == expected


def test_rejection_is_a_domain_error_with_a_friendly_reason() -> None:
    with pytest.raises(CaptionRejected) as caught:
        check_caption("what the fuck")
    error = caught.value
    assert isinstance(error, BadInput)
    assert error.reason == "That caption contains a word we can't use."
    assert "fuck" not in str(error).lower()


def test_brand_banned_word_is_not_echoed() -> None:
    with pytest.raises(CaptionRejected) as caught:
        check_caption("Globex rules", WordLists(banned=frozenset({"Globex"})))
    assert "globex" not in caught.value.reason.lower()


# --- normalisation ----------------------------------------------------------------------------


def test_nfc_and_nfd_give_the_same_caption() -> None:
    nfc = unicodedata.normalize("NFC", "Müller")
    nfd = unicodedata.normalize("NFD", "Müller")
    assert nfc != nfd
    assert normalize_caption(nfd) == normalize_caption(nfc) == nfc
    assert check_caption(nfd) == nfc


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("  hello   world  ", "hello world"),
        ("hello\n\nworld", "hello world"),
        ("hello\r\n\tworld", "hello world"),
        ("hello\u00a0\u2003world", "hello world"),
        ("line\u2028separator", "line separator"),
        ("one", "one"),
    ],
)
def test_whitespace_is_folded(raw: str, normalised: str) -> None:
    assert normalize_caption(raw) == normalised
    assert check_caption(raw) == normalised


def test_normalize_does_not_check() -> None:
    assert normalize_caption(" fuck\u202e ") == "fuck\u202e"


# --- length -----------------------------------------------------------------------------------


def test_length_is_counted_in_graphemes() -> None:
    eighty = FAMILY * MAX_CAPTION_GRAPHEMES
    assert len(eighty) == 5 * MAX_CAPTION_GRAPHEMES  # far more code points than graphemes
    assert check_caption(eighty) == eighty
    with pytest.raises(CaptionRejected) as caught:
        check_caption(eighty + FAMILY)
    assert caught.value.code == TOO_LONG
    assert caught.value.reason == "Please keep it to 80 characters or fewer (this one has 81)."


def test_eighty_letters_pass_and_eighty_one_fail() -> None:
    assert check_caption("a" * 80) == "a" * 80
    with pytest.raises(CaptionRejected) as caught:
        check_caption("a" * 81)
    assert caught.value.code == TOO_LONG


def test_length_is_counted_after_whitespace_folding() -> None:
    caption = "a" + " " * 200 + "b"
    assert check_caption(caption) == "a b"


def test_huge_caption_is_refused_before_any_unicode_work() -> None:
    # Full of characters that would otherwise fail later checks: the size check must come first.
    huge = "\u202e" + "fuck " * 20_000
    assert len(huge) > MAX_RAW_CODE_POINTS
    with pytest.raises(CaptionRejected) as caught:
        check_caption(huge)
    assert caught.value.code == TOO_LONG
    assert "80" in caught.value.reason


def test_hundred_thousand_characters() -> None:
    with pytest.raises(CaptionRejected) as caught:
        check_caption("x" * 100_000)
    assert caught.value.code == TOO_LONG


# --- word lists -------------------------------------------------------------------------------

GLOBEX = WordLists(banned=frozenset({"Globex", "Acme sucks"}))


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("I love Globex", PROFANITY),
        ("GL0BEX", PROFANITY),
        ("g l o b e x", PROFANITY),
        ("glöbex", PROFANITY),
        ("Acme sucks", PROFANITY),
        ("Acme   SUCKS!", PROFANITY),
        ("Acme rocks", None),
        ("globexcorp", None),  # whole words only
    ],
)
def test_brand_banned_words(caption: str, expected: str | None) -> None:
    if expected is None:
        assert check_caption(caption, GLOBEX) == normalize_caption(caption)
    else:
        with pytest.raises(CaptionRejected) as caught:
            check_caption(caption, GLOBEX)
        assert caught.value.code == expected


def test_brand_words_do_not_leak_between_callers() -> None:
    with pytest.raises(CaptionRejected):
        check_caption("Globex", GLOBEX)
    assert check_caption("Globex") == "Globex"
    assert check_caption("Globex", WordLists()) == "Globex"


def test_brand_allow_list_exempts_a_word() -> None:
    with pytest.raises(CaptionRejected):
        check_caption("hell yeah")
    words = WordLists(allowed=frozenset({"hell"}))
    assert check_caption("hell yeah", words) == "hell yeah"
    assert check_caption("Hell Yeah!", words) == "Hell Yeah!"
    # The exception is for that word only.
    with pytest.raises(CaptionRejected):
        check_caption("hell shit", words)


def test_brand_allow_list_takes_phrases() -> None:
    with pytest.raises(CaptionRejected):
        check_caption("Dick Whittington")
    words = WordLists(allowed=frozenset({"Dick Whittington"}))
    assert check_caption("Dick Whittington panto", words) == "Dick Whittington panto"
    with pytest.raises(CaptionRejected):
        check_caption("Dick", words)


def test_brand_ban_beats_the_builtin_allow_list() -> None:
    assert check_caption("Thank god") == "Thank god"
    with pytest.raises(CaptionRejected):
        check_caption("Thank god", WordLists(banned=frozenset({"god"})))


def test_default_words_come_from_better_profanity() -> None:
    from better_profanity import Profanity

    listed = {str(word) for word in Profanity().CENSOR_WORDSET}
    assert "fannybandit" in listed
    with pytest.raises(CaptionRejected):
        check_caption("fannybandit")
    with pytest.raises(CaptionRejected):
        check_caption("f4nnyb4nd1t")
