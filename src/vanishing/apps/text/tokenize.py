"""Text to tokens: Unicode normalisation, then words or characters.

Every text is first normalised the same way:

1. NFC (composed characters: "e" + U+0301 and "é" become the same token);
2. control characters (Unicode category Cc other than white space) and invisible format
   characters (category Cf: zero-width spaces and joiners, soft hyphens, byte-order marks,
   direction marks) are removed, and the typographic apostrophe U+2019 becomes "'";
3. with ``lowercase``, ``str.casefold`` (a full case folding: "Straße" and "STRASSE" both
   become "strasse", which ``str.lower`` does not do), then NFC again.

Then, at ``level="word"``, the tokens are the matches of WORD_PATTERN: runs of letters,
digits and underscores (any script), with inner apostrophes ("don't" is one token), and each
other non-space character alone ("?", "€", an emoji). At ``level="char"`` the tokens are the
characters (code points) of the text with each run of white space made one space and the ends
stripped. A text may be empty after this ("", "\\u200b"): the result is then [].
"""

from __future__ import annotations

import re
import unicodedata

LEVELS = ("word", "char")
"""Token levels (the choices of a --level option)."""

WORD_PATTERN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
"""A word token: letters/digits/underscores with inner apostrophes, or one other visible char."""

_SPACES = re.compile(r"\s+")


def normalise(text: str, lowercase: bool = True) -> str:
    """``text`` in NFC, without control or format characters, case-folded if ``lowercase``."""
    text = unicodedata.normalize("NFC", text).replace("\u2019", "'")
    text = "".join(
        ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    if lowercase:
        text = unicodedata.normalize("NFC", text.casefold())
    return text


def tokenize(text: str, level: str = "word", lowercase: bool = True) -> list[str]:
    """The tokens of ``text`` at ``level`` ("word" or "char"), after ``normalise``."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    clean = normalise(text, lowercase)
    if level == "word":
        return WORD_PATTERN.findall(clean)
    return list(_SPACES.sub(" ", clean).strip())
