"""One run's comparison: TF-IDF + logistic regression, our simple RNN and our LSTM, on one split.

Every model sees the same texts for fitting and for its choices, and is scored on the same
test part with the same metrics (`metrics.py`): the baseline fits on ``split.train`` and
chooses C on ``split.val``; a recurrent model fits on ``split.train`` and ``split.val``
together, holding out as many texts (stratified, drawn by its own seed) for early stopping,
so its weights, like the baseline's C, are chosen on texts it did not train on. fit_seconds is
the wall time of the whole fit (the vocabulary or the vectorizer included).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vanishing.apps.text.baseline import tfidf_baseline
from vanishing.apps.text.classifier import TextClassifier
from vanishing.apps.text.metrics import accuracy, macro_f1
from vanishing.apps.text.split import Split


@dataclass(frozen=True)
class Score:
    """One model's test accuracy and macro-F1, and its fit's wall time in seconds.

    epochs: epochs trained (recurrent models; None for the baseline); detail: a short note
    (the C chosen, the epoch whose weights were kept)."""

    name: str
    accuracy: float
    macro_f1: float
    fit_seconds: float
    epochs: int | None
    detail: str


def model_name(cell: str, nonlinearity: str = "tanh") -> str:
    """The display name of a recurrent model: "LSTM" or "RNN (tanh)"."""
    return "LSTM" if cell == "lstm" else f"RNN ({nonlinearity})"


def fit_recurrent(split: Split, params: dict[str, Any]) -> tuple[TextClassifier, Score]:
    """A TextClassifier(**params) fitted on split.train + split.val (module docstring), scored
    on split.test."""
    train, val = split.train, split.val
    texts = train.texts + val.texts
    labels = train.require_labels() + (val.require_labels() if len(val) else [])
    params = {**params, "validation_fraction": len(val) / len(texts)}
    start = time.perf_counter()
    model = TextClassifier(**params).fit(texts, labels)
    seconds = time.perf_counter() - start
    truth = split.test.require_labels()
    predicted = [str(p) for p in model.predict(split.test.texts)]
    name = model_name(model.cell, model.nonlinearity)
    detail = f"best epoch {model.best_epoch_} of {model.n_iter_}"
    score = Score(
        name, accuracy(truth, predicted), macro_f1(truth, predicted), seconds, model.n_iter_, detail
    )
    return model, score


def compare(
    split: Split,
    cells: Sequence[str],
    params: dict[str, Any],
    seed: int = 0,
    baseline: bool = True,
    on_start: Callable[[str], None] | None = None,
) -> tuple[list[Score], dict[str, TextClassifier]]:
    """The baseline (if ``baseline``) and a TextClassifier per cell in ``cells`` (params shared,
    cell set per model) on ``split``: their scores and the fitted recurrent models by cell.
    on_start(name) is called before each fit (a progress display)."""
    scores: list[Score] = []
    models: dict[str, TextClassifier] = {}
    if baseline:
        if on_start:
            on_start("TF-IDF + logistic regression")
        result = tfidf_baseline(split, seed=seed)
        scores.append(
            Score(
                "TF-IDF + logistic regression",
                result.accuracy,
                result.macro_f1,
                result.fit_seconds,
                None,
                f"C = {result.C:g}",
            )
        )
    for cell in cells:
        if on_start:
            on_start(model_name(cell, params.get("nonlinearity", "tanh")))
        model, score = fit_recurrent(split, {**params, "cell": cell})
        models[cell] = model
        scores.append(score)
    return scores, models
