"""`vanishing predict` for the time-series models: read a file, predict, one row per case.

- "timeseries-classifier" (`LSTMClassifier`): the file holds cases as `vanishing classify`
  reads them (.ts, or CSV, wide or long, with or without the label column); a row per case:
  the predicted class and each class's probability, and the true label where the file has
  one (the summary gives the accuracy then).
- "timeseries-regressor" (`LSTMRegressor`): with forecaster.json (a model that `vanishing
  forecast` trained, `forecaster.py`) each case is a history, univariate, and the row holds
  the forecasts of the next `steps` values (default: the horizon it was trained for); a CSV
  with a single column is one series, a value per row. Without it, the regressor's output(s)
  for each case.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vanishing.apps.predictions import Predictions
from vanishing.apps.timeseries.errors import DataError
from vanishing.apps.timeseries.files import csv_rows, read_cases
from vanishing.apps.timeseries.forecast_protocol import recursive_forecast
from vanishing.apps.timeseries.forecaster import forecaster_spec, load_forecaster
from vanishing.apps.timeseries.recurrent import LSTMClassifier, LSTMRegressor
from vanishing.apps.timeseries.windows import DirectWindows


def classify_file(model_dir: Path, file: Path, steps: int | None = None) -> Predictions:
    """The saved classifier's predictions for the cases in file (steps: unused)."""
    model = LSTMClassifier.load(model_dir)
    X, y = read_cases(file)
    proba = model.predict_proba(X)  # (n, C)
    predicted = model.classes_[proba.argmax(axis=1)]
    columns = ["case", "predicted", *(f"p({c})" for c in model.classes_.tolist())]
    rows = [
        [i, label, *(f"{p:.6g}" for p in row)]
        for i, (label, row) in enumerate(zip(predicted.tolist(), proba, strict=True))
    ]
    summary = f"{len(rows)} cases"
    if y is not None:
        columns.append("label")
        for row, label in zip(rows, y.tolist(), strict=True):
            row.append(label)
        correct = np.mean(predicted.astype(str) == np.asarray(y).astype(str))
        summary = f"{len(rows)} labelled cases, accuracy {correct:.4f}"
    return Predictions(columns, rows, summary)


def histories(file: Path) -> list[np.ndarray]:
    """The univariate histories in file: a one-column CSV is one series, else one per case."""
    if file.suffix.lower() == ".csv":
        header, rows = csv_rows(file, None, None)
        if len(header) == 1:
            X, _ = read_cases(file, label="")  # each row one value: one series
            return [np.concatenate([x[0] for x in X])]
    X, _ = read_cases(file)
    if X[0].shape[0] != 1:
        raise DataError(file, "univariate histories (1 channel)", f"{X[0].shape[0]} channels")
    return [x[0] for x in X]


def regress_file(model_dir: Path, file: Path, steps: int | None = None) -> Predictions:
    """The saved regressor's outputs, or a saved forecaster's next `steps` values per history."""
    spec = forecaster_spec(model_dir)
    if spec is None:
        X, _ = read_cases(file)
        out = np.asarray(LSTMRegressor.load(model_dir).predict(X)).reshape(len(X), -1)  # (n, k)
        names = (
            ["prediction"] if out.shape[1] == 1 else [f"output {j}" for j in range(out.shape[1])]
        )
        rows = [[i, *(f"{v:.6g}" for v in row)] for i, row in enumerate(out)]
        return Predictions(["case", *names], rows, f"{len(rows)} cases")
    model, spec = load_forecaster(model_dir)
    steps = spec["horizon"] if steps is None else steps
    if steps < 1:
        raise DataError("steps", "at least 1 value to forecast", str(steps))
    starts = histories(file)
    if isinstance(model, DirectWindows):
        if steps > model.horizon:
            raise DataError(
                "steps", f"at most {model.horizon} (this direct forecaster's horizon)", str(steps)
            )
        out = model.predict_horizon(starts, steps)  # (n, steps)
    else:
        out = recursive_forecast(model, starts, steps, "forecaster")  # (n, steps)
    rows = [
        [i, len(h), *(f"{v:.6g}" for v in row)]
        for i, (h, row) in enumerate(zip(starts, out, strict=True))
    ]
    columns = ["case", "history length", *(f"t+{k}" for k in range(1, steps + 1))]
    summary = (
        f"{len(rows)} histories, {steps} values ahead ({spec['strategy']}, window {spec['window']})"
    )
    return Predictions(columns, rows, summary)
