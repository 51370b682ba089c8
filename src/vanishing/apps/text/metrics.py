"""Classification scores shared by every model and baseline: accuracy and macro-F1."""

from __future__ import annotations

from collections.abc import Sequence


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """The fraction of predictions equal to the true label."""
    _check(y_true, y_pred)
    return sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """The unweighted mean over classes of F1 = 2 TP / (2 TP + FP + FN).

    The classes are those in ``y_true`` or ``y_pred`` (as scikit-learn's
    ``f1_score(average="macro")``); a class predicted but never true scores 0.
    """
    _check(y_true, y_pred)
    scores = []
    for label in sorted(set(y_true) | set(y_pred)):
        tp = sum(t == label and p == label for t, p in zip(y_true, y_pred, strict=True))
        fp = sum(t != label and p == label for t, p in zip(y_true, y_pred, strict=True))
        fn = sum(t == label and p != label for t, p in zip(y_true, y_pred, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def _check(y_true: Sequence[str], y_pred: Sequence[str]) -> None:
    if len(y_true) != len(y_pred) or not y_true:
        raise ValueError(
            f"need as many predictions as true labels, at least one: got {len(y_true)} "
            f"labels and {len(y_pred)} predictions"
        )
