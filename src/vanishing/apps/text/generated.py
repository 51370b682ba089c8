"""A generated text-classification set whose label sits far from the end of the text.

Every text is ``length`` words: filler words drawn uniformly from FILLERS, and keywords
(never fillers) placed among the first ``head`` words, so a model that reads to the end must
carry the keyword across at least ``length - head`` words. Two variants, both binary with the
two classes in equal numbers (one more of the first class when ``n`` is odd) and in a
shuffled order, so chance (and the majority class) is 1/2:

- ``"keyword"``: one keyword, "alpha" or "omega", at a uniform position in [0, head); the
  label is that keyword. A bag of words solves it (the keyword is in the text or not).
- ``"order"``: both keywords, at two distinct uniform positions in [0, head); the label is
  "alpha-first" or "omega-first", whichever comes first. Every text holds each keyword once
  and fillers drawn the same way for both classes, so the bag of words of a text says nothing
  about its label: a bag-of-words model stays at chance, a model of the order does not.

The draws come from ``random.Random(seed)``: the same arguments give the same texts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from vanishing.apps.text.labelled import LabelledTexts

KEYWORDS = ("alpha", "omega")
VARIANTS = ("keyword", "order")
CHANCE = 0.5
"""Accuracy (and macro-F1) of guessing, or of always predicting one class, on either variant."""

FILLERS = tuple(f"{c}{v}ka" for c in "bdgmnprt" for v in "aeiou")
"""Filler words: 40 four-letter non-words (baka, beka, ..., tuka), none a keyword."""


@dataclass(frozen=True)
class KeywordTexts:
    """The generated texts and, for each, the word positions of its keywords (in text order)."""

    data: LabelledTexts
    positions: list[tuple[int, ...]]


def keyword_texts(
    n: int, length: int = 60, head: int = 10, variant: str = "keyword", seed: int = 0
) -> KeywordTexts:
    """``n`` texts of ``length`` words whose label is set by keywords among the first ``head``."""
    for name, value, low in (("n", n, 2), ("length", length, 2), ("head", head, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if head > length:
        raise ValueError(f"head must be <= length, got head={head} > length={length}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    rng = random.Random(seed)
    classes = [0] * ((n + 1) // 2) + [1] * (n // 2)
    rng.shuffle(classes)
    texts, labels, positions = [], [], []
    for k in classes:
        words = [rng.choice(FILLERS) for _ in range(length)]
        if variant == "keyword":
            where = (rng.randrange(head),)
            words[where[0]] = KEYWORDS[k]
            labels.append(KEYWORDS[k])
        else:
            where = tuple(sorted(rng.sample(range(head), 2)))
            words[where[0]], words[where[1]] = KEYWORDS[k], KEYWORDS[1 - k]
            labels.append(f"{KEYWORDS[k]}-first")
        texts.append(" ".join(words))
        positions.append(where)
    source = f"keyword_texts(variant={variant!r}, length={length}, head={head}, seed={seed})"
    origins = [f"{source}:{i}" for i in range(n)]
    return KeywordTexts(LabelledTexts(texts, labels, origins, source), positions)
