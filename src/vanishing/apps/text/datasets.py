"""The named data sets a command can run without a file: generated keyword texts, fortunes."""

from __future__ import annotations

from vanishing.apps.text.fortunes import load_fortunes
from vanishing.apps.text.generated import keyword_texts
from vanishing.apps.text.labelled import LabelledTexts

DATASETS = ("keyword", "order", "fortunes")
"""keyword, order: `generated.keyword_texts`'s two variants; fortunes: `fortunes.load_fortunes`
(its default categories; needs `apt-get install fortunes`)."""


def load_dataset(
    name: str, n: int = 2000, length: int = 60, head: int = 10, seed: int = 0
) -> LabelledTexts:
    """The data set ``name``; n, length, head and seed set the generated ones only."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {name!r}")
    if name == "fortunes":
        return load_fortunes()
    return keyword_texts(n, length, head, name, seed).data
