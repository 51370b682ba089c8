"""Predictions of a saved TextClassifier for the texts of a file, written as CSV.

What `vanishing predict --model DIR --file F` calls for a model of kind "text-classifier".
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from vanishing.apps.text.classifier import TextClassifier
from vanishing.apps.text.reading import read_texts
from vanishing.train.checkpoint import write_atomic


def predict_file(
    model: TextClassifier | str | Path,
    path: str | Path,
    out_csv: str | Path,
    text_col: str = "text",
    fmt: str | None = None,
    encoding: str = "utf-8",
) -> int:
    """Predict the texts of ``path`` (CSV, TSV or JSON Lines; ``fmt`` overrides the extension;
    the column ``text_col``) with ``model`` (fitted, or the folder it was saved in) and write
    ``out_csv``: one row per text, in file order, with the columns line (the line its record
    starts on), prediction and p_<class> for each class (predict_proba's columns). Returns
    the number of texts. A bad file is one TextDataError naming its line; a bad model folder
    one ModelFileError. The CSV is written atomically."""
    if not isinstance(model, TextClassifier):
        model = TextClassifier.load(model)
    data = read_texts(path, text_col, None, format=fmt, encoding=encoding)
    probabilities = model.predict_proba(data.texts)  # (n, C)
    classes = [str(c) for c in model.classes_]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["line", "prediction", *(f"p_{c}" for c in classes)])
    for origin, p in zip(data.origins, probabilities, strict=True):
        line = origin.rpartition(":")[2]
        writer.writerow([line, classes[int(p.argmax())], *(f"{v:.6g}" for v in p)])
    write_atomic(Path(out_csv), buffer.getvalue().encode("utf-8"))
    return len(data)
