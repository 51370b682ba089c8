"""Predictions of a saved TextClassifier for the texts of a file (`vanishing predict`).

What `vanishing predict --model DIR --file F` calls for a model of kind "text-classifier".
"""

from __future__ import annotations

from pathlib import Path

from vanishing.apps.predictions import Predictions
from vanishing.apps.text.classifier import TextClassifier
from vanishing.apps.text.reading import read_texts


def text_predictions(
    model: TextClassifier | str | Path,
    path: str | Path,
    text_col: str = "text",
    fmt: str | None = None,
    encoding: str = "utf-8",
) -> Predictions:
    """Predict the texts of ``path`` (CSV, TSV or JSON Lines; ``fmt`` overrides the extension;
    the column ``text_col``) with ``model`` (fitted, or the folder it was saved in): one row
    per text, in file order, with the columns line (the line its record starts on),
    prediction and p_<class> for each class (predict_proba's columns). A bad file is one
    TextDataError naming its line; a bad model folder one ModelFileError."""
    if not isinstance(model, TextClassifier):
        model = TextClassifier.load(model)
    data = read_texts(path, text_col, None, format=fmt, encoding=encoding)
    probabilities = model.predict_proba(data.texts)  # (n, C)
    classes = [str(c) for c in model.classes_]
    rows: list[list[object]] = [
        [origin.rpartition(":")[2], classes[int(p.argmax())], *(f"{v:.6g}" for v in p)]
        for origin, p in zip(data.origins, probabilities, strict=True)
    ]
    columns = ["line", "prediction", *(f"p_{c}" for c in classes)]
    return Predictions(columns, rows, f"{len(rows)} texts")
