"""LabelledTexts: texts, their labels and where each came from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from vanishing.apps.text.errors import TextDataError


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with one label each (``labels`` is None for unlabelled texts, e.g. to predict).

    ``origins[i]`` names where text i came from (``"reviews.csv:12"``, the line its record
    starts on), so later errors and predictions can point back to the source. ``source`` names
    the whole collection (a path, a directory or a generator's name). Labels are strings.
    """

    texts: list[str]
    labels: list[str] | None
    origins: list[str]
    source: str

    def __post_init__(self) -> None:
        n = len(self.texts)
        if len(self.origins) != n or (self.labels is not None and len(self.labels) != n):
            labels = "no labels" if self.labels is None else f"{len(self.labels)} labels"
            raise ValueError(
                f"LabelledTexts needs one label and origin per text: got {n} texts, "
                f"{labels} and {len(self.origins)} origins"
            )

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def classes(self) -> list[str]:
        """The distinct labels, sorted (the class order of every model and metric here)."""
        return sorted(set(self.require_labels()))

    def class_counts(self) -> dict[str, int]:
        """Examples per class, in class order."""
        counts = Counter(self.require_labels())
        return {label: counts[label] for label in sorted(counts)}

    def require_labels(self) -> list[str]:
        """The labels; a TextDataError if these texts have none."""
        if self.labels is None:
            raise TextDataError(f"{self.source}: these texts have no labels (no label column)")
        return self.labels

    def require_classes(self, minimum: int = 2) -> None:
        """A TextDataError unless there are at least ``minimum`` classes (a classifier needs 2)."""
        counts = self.class_counts()
        if len(counts) < minimum:
            found = ", ".join(f"{label!r} ({n})" for label, n in counts.items()) or "none"
            raise TextDataError(
                f"{self.source}: a classifier needs at least {minimum} classes, "
                f"found {len(counts)}: {found}"
            )

    def subset(self, indices: list[int]) -> LabelledTexts:
        """The texts at ``indices``, in that order."""
        return LabelledTexts(
            texts=[self.texts[i] for i in indices],
            labels=None if self.labels is None else [self.labels[i] for i in indices],
            origins=[self.origins[i] for i in indices],
            source=self.source,
        )
