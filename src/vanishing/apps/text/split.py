"""Train / validation / test splits: stratified and seeded, or read from given split files."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from vanishing.apps.text.errors import TextDataError
from vanishing.apps.text.labelled import LabelledTexts
from vanishing.apps.text.reading import read_texts


@dataclass(frozen=True)
class Split:
    """The three parts every model and baseline of one run is fitted and scored on.

    ``val`` may be empty (no validation part); ``train`` and ``test`` never are.
    """

    train: LabelledTexts
    val: LabelledTexts
    test: LabelledTexts

    @property
    def classes(self) -> list[str]:
        """The classes, sorted: those of the training part (the others hold no other class)."""
        return self.train.classes


def _check_fraction(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and 0 <= value < 1):
        raise ValueError(f"{name} must be a fraction in [0, 1), got {value}")


def stratified_split(
    data: LabelledTexts, val: float = 0.1, test: float = 0.2, seed: int = 0
) -> Split:
    """Split ``data`` into train, validation and test parts, class by class.

    Each class of n examples gives max(1, round(test * n)) to the test part and
    max(1, round(val * n)) to the validation part (none when the fraction is 0) and the rest,
    at least one, to training; so every class is in every part, in the proportions asked.
    Which examples go where, and the order inside each part, are drawn from
    ``random.Random(seed)``: the same data and seed give the same split. A class with too
    few examples for that is a TextDataError naming it.
    """
    _check_fraction("val", val)
    _check_fraction("test", test)
    if test == 0:
        raise ValueError("test must be > 0: a split needs a test part")
    if val + test >= 1:
        raise ValueError(f"val + test must be < 1 to leave a training part, got {val + test}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    data.require_classes(2)
    labels = data.require_labels()
    rng = random.Random(seed)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for label in data.classes:  # sorted, so the draws do not depend on the file's order
        members = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(members)
        n_test = max(1, round(test * len(members))) if test > 0 else 0
        n_val = max(1, round(val * len(members))) if val > 0 else 0
        if len(members) - n_test - n_val < 1:
            needed = 1 + (test > 0) + (val > 0)
            raise TextDataError(
                f"{data.source}: class {label!r} has {len(members)} example(s), too few to "
                f"stratify into train/val/test = {1 - val - test:g}/{val:g}/{test:g}; each class "
                f"needs at least {needed} (and one more per part the fractions round to)"
            )
        parts["test"] += members[:n_test]
        parts["val"] += members[n_test : n_test + n_val]
        parts["train"] += members[n_test + n_val :]
    for indices in parts.values():
        rng.shuffle(indices)
    return Split(**{name: data.subset(indices) for name, indices in parts.items()})


def read_split(
    train: str | Path,
    test: str | Path,
    text_col: str,
    label_col: str,
    val: str | Path | None = None,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    format: str | None = None,
    encoding: str = "utf-8",
) -> Split:
    """A split from given files; without a validation file, one is drawn from ``train``.

    The validation part is then ``val_fraction`` of each training class (stratified, seeded as
    in stratified_split, and empty if ``val_fraction`` is 0). ``format`` and ``encoding`` are
    read_texts's, for every file. The validation and test files may hold no class the training
    file lacks: the first such row is a TextDataError naming its file and line.
    """
    _check_fraction("val_fraction", val_fraction)
    train_data = read_texts(train, text_col, label_col, format=format, encoding=encoding)
    train_data.require_classes(2)
    test_data = read_texts(test, text_col, label_col, format=format, encoding=encoding)
    if val is not None:
        val_data = read_texts(val, text_col, label_col, format=format, encoding=encoding)
    elif val_fraction > 0:
        carved = stratified_split(train_data, val=0.0, test=val_fraction, seed=seed)
        train_data, val_data = carved.train, carved.test
    else:
        val_data = train_data.subset([])
    known = set(train_data.classes)
    for part in (val_data, test_data):
        for label, origin in zip(part.require_labels(), part.origins, strict=True):
            if label not in known:
                raise TextDataError(
                    f"{_line(origin)}: label {label!r} is not in the training file "
                    f"{train_data.source} (its classes are {sorted(known)})"
                )
    return Split(train=train_data, val=val_data, test=test_data)


def _line(origin: str) -> str:
    """``path:12`` as ``path, line 12`` (the form of every error message)."""
    path, _, line = origin.rpartition(":")
    return f"{path}, line {line}" if line.isdigit() else origin
