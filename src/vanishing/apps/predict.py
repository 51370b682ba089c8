"""`vanishing predict`: which reader and predictor a saved model folder needs, by its kind.

PREDICTORS maps the `kind` that model.json records to a function (model folder, file,
`Options`) -> `Predictions` that loads the model, reads the file and predicts. An application
joins by adding its kind here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vanishing.apps.model_file import CONFIG, ModelFileError, read_kind
from vanishing.apps.predictions import Predictions
from vanishing.apps.text.predict import text_predictions
from vanishing.apps.timeseries import predicting as timeseries


@dataclass(frozen=True)
class Options:
    """What a predictor may need besides the model and the file: steps (forecasters: values
    ahead; None: the model's horizon), text_col and fmt (text files: the text column, and
    csv | tsv | jsonl, None: from the extension)."""

    steps: int | None = None
    text_col: str = "text"
    fmt: str | None = None


Predictor = Callable[[Path, Path, Options], Predictions]
PREDICTORS: dict[str, Predictor] = {
    "timeseries-classifier": lambda model, file, o: timeseries.classify_file(model, file, o.steps),
    "timeseries-regressor": lambda model, file, o: timeseries.regress_file(model, file, o.steps),
    "text-classifier": lambda model, file, o: text_predictions(model, file, o.text_col, o.fmt),
}


def predict_file(
    model: str | Path, file: str | Path, options: Options | None = None
) -> Predictions:
    """The predictions of the model saved in folder `model` for the cases in `file`."""
    kind = read_kind(model)
    if kind not in PREDICTORS:
        raise ModelFileError(
            Path(model) / CONFIG, f"a model kind among {', '.join(PREDICTORS)}", repr(kind)
        )
    return PREDICTORS[kind](Path(model), Path(file), options or Options())
