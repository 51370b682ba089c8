"""`vanishing classify`: our LSTM and RNN beside 1-NN DTW and MiniRocket on labelled series."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vanishing.apps.timeseries.classifiers import METHODS
from vanishing.apps.timeseries.collection import SHIPPED
from vanishing.cli.common import (
    RUNS,
    as_option,
    console,
    fail,
    new_run_dir,
    print_table,
    run_meta,
    steps,
)

Opt = typer.Option
OPTIONS = {
    "hidden_size": "--hidden",
    "max_epochs": "--epochs",
    "patience": "--patience",
    "validation_fraction": "--validation",
    "lr": "--lr",
    "batch_size": "--batch",
    "nonlinearity": "--nonlinearity",
}
"""The classifier's settings by the options that set them."""


def classify(
    dataset: Annotated[
        list[str] | None,
        Opt(
            "--dataset",
            show_default="all five",
            help=f"A data set shipped in aeon (repeat for several): {', '.join(SHIPPED)}.",
        ),
    ] = None,
    file: Annotated[
        Path | None,
        Opt("--file", help="Your own training data instead: a UCR/UEA .ts file or a CSV file."),
    ] = None,
    test_file: Annotated[
        Path | None,
        Opt("--test-file", help="Its test part (else a stratified 30% of --file is held out)."),
    ] = None,
    label: Annotated[str, Opt("--label", help="CSV: the column holding the class.")] = "label",
    case: Annotated[
        str | None,
        Opt("--case", help="CSV in the long layout: the column naming each row's case."),
    ] = None,
    methods: Annotated[
        str, Opt("--methods", help=f"Comma-separated, among {','.join(METHODS)}.")
    ] = ",".join(METHODS),
    seeds: Annotated[int, Opt("--seeds", help="Seeds 0 .. N-1 for every seeded method.")] = 3,
    hidden: Annotated[int, Opt("--hidden", help="Hidden units of our networks.")] = 64,
    epochs: Annotated[int, Opt("--epochs", help="At most this many epochs.")] = 500,
    patience: Annotated[
        int, Opt("--patience", help="Stop after this many epochs without a better validation loss.")
    ] = 100,
    validation: Annotated[
        float, Opt("--validation", help="Share of the training cases held out for early stopping.")
    ] = 0.2,
    lr: Annotated[float, Opt("--lr", help="Adam's learning rate.")] = 3e-3,
    batch: Annotated[int, Opt("--batch", help="Series per step.")] = 16,
    nonlinearity: Annotated[
        str, Opt("--nonlinearity", help="The RNN's activation: tanh, relu or sigmoid.")
    ] = "tanh",
    out: Annotated[
        Path, Opt("--out", help="Parent folder of the run folder classify-<time>/.")
    ] = RUNS,
    progress: Annotated[bool, Opt("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Classify series with our LSTM and RNN beside 1-NN DTW and MiniRocket (aeon).

    Test accuracy over seeds (mean and spread), fit time, the published accuracies and each
    trained network's gradient horizon beside the series length. Writes metrics.json,
    gradient-<data set>.png, models/ and report.html into the run folder.
    """
    from vanishing.apps.timeseries.classify_run import (
        COLUMNS,
        NetworkSettings,
        fits,
        rows,
        run_classify,
        write_classify_run,
    )
    from vanishing.apps.timeseries.collection import load_collection
    from vanishing.apps.timeseries.errors import DataError
    from vanishing.apps.timeseries.files import load_files

    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        fail(f"--methods: expected names among {', '.join(METHODS)}, got {methods!r}")
    if seeds < 1:
        fail(f"--seeds must be at least 1, got {seeds}")
    if file is not None and dataset:
        fail("--file and --dataset: expected one of them, got both")
    if test_file is not None and file is None:
        fail("--test-file needs --file (the training part)")
    settings = NetworkSettings(hidden, epochs, patience, validation, lr, batch, nonlinearity)
    try:
        settings.classifier("lstm", 0)
    except ValueError as error:
        fail(as_option(str(error), OPTIONS))
    try:
        if file is not None:
            collections = [load_files(file, test_file, label, case)]
        else:
            for name in dataset or []:
                if name not in SHIPPED:
                    raise DataError("--dataset", f"one of {', '.join(SHIPPED)}", repr(name))
            collections = [load_collection(name) for name in dataset or SHIPPED]
    except DataError as error:
        fail(str(error))
    run_dir = new_run_dir(out, "classify")
    names = ", ".join(c.name for c in collections)
    console.print(f"[bold]vanishing classify[/]: {names}; {', '.join(chosen)} -> {run_dir}")
    results = []
    with steps(len(collections) * fits(chosen, range(seeds)), progress) as start:
        for data in collections:
            results.append((data, run_classify(data, chosen, settings, range(seeds), start)))
    paths = write_classify_run(run_dir, results, settings, run_meta())
    table = [row for data, runs in results for row in rows(data, runs)]
    print_table("Test accuracy on the published splits", COLUMNS, table)
    console.print(f"report: {paths['report']}")
