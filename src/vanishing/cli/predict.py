"""`vanishing predict`: a saved model's predictions for the cases in a file, as CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vanishing.apps.text.reading import FORMATS
from vanishing.cli.common import RUNS, choices, console, fail, new_run_dir, print_table, run_meta

Opt = typer.Option
Format = choices("Format", FORMATS)
SHOWN = 20
"""Rows of the predictions printed (all of them go to the CSV)."""


def predict(
    model: Annotated[
        Path, Opt("--model", help="A saved model folder (model.json, model.safetensors).")
    ],
    file: Annotated[
        Path,
        Opt(
            "--file",
            help="The cases: time series as a .ts or CSV file (a CSV's label column is "
            "optional); texts as CSV, TSV or JSON Lines.",
        ),
    ],
    steps: Annotated[
        int | None,
        Opt("--steps", show_default="its horizon", help="Forecasters: values to forecast."),
    ] = None,
    text_col: Annotated[
        str, Opt("--text-col", help="Text models: the column (or JSON key) holding the texts.")
    ] = "text",
    fmt: Annotated[
        Format | None,
        Opt("--format", help="Text models: the file's format, if its extension does not say."),
    ] = None,
    out: Annotated[
        Path, Opt("--out", help="Parent folder of the run folder predict-<time>/.")
    ] = RUNS,
) -> None:
    """Predict the cases in --file with the model saved in --model (by the model's kind).

    Writes predictions.csv (one row per case) and metrics.json into the run folder.
    """
    from vanishing.apps.model_file import ModelFileError
    from vanishing.apps.predict import Options, predict_file
    from vanishing.apps.text.errors import TextDataError
    from vanishing.apps.timeseries.errors import DataError

    options = Options(steps, text_col, fmt and fmt.value)
    try:
        predictions = predict_file(model, file, options)
    except (ModelFileError, DataError, TextDataError) as error:
        fail(str(error))
    run_dir = new_run_dir(out, "predict")
    csv = predictions.write_csv(run_dir / "predictions.csv")
    record = {
        "command": "predict",
        "model": str(model),
        "file": str(file),
        "cases": len(predictions.rows),
        "summary": predictions.summary,
        "machine": run_meta(),
    }
    (run_dir / "metrics.json").write_text(json.dumps(record, indent=2))
    shown = predictions.rows[:SHOWN]
    more = f" (first {SHOWN} of {len(predictions.rows)})" if len(predictions.rows) > SHOWN else ""
    print_table(f"Predictions{more}", predictions.columns, shown)
    console.print(f"{predictions.summary}; all rows: {csv}")
