"""`vanishing predict`: which reader and predictor a saved model folder needs, by its kind.

PREDICTORS maps the `kind` that model.json records to a function (model folder, file,
steps) -> `Predictions` that loads the model, reads the file and predicts. An application
joins by adding its kind here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vanishing.apps.model_file import CONFIG, ModelFileError, read_kind
from vanishing.apps.predictions import Predictions
from vanishing.apps.timeseries import predicting as timeseries

PREDICTORS: dict[str, Callable[[Path, Path, int | None], Predictions]] = {
    "timeseries-classifier": timeseries.classify_file,
    "timeseries-regressor": timeseries.regress_file,
}


def predict_file(model: str | Path, file: str | Path, steps: int | None = None) -> Predictions:
    """The predictions of the model saved in folder `model` for the cases in `file`."""
    kind = read_kind(model)
    if kind not in PREDICTORS:
        raise ModelFileError(
            Path(model) / CONFIG, f"a model kind among {', '.join(PREDICTORS)}", repr(kind)
        )
    return PREDICTORS[kind](Path(model), Path(file), steps)
