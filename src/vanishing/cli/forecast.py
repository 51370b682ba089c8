"""`vanishing forecast`: our recurrent forecaster beside the baselines on a shipped series."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vanishing.apps.timeseries.series import LOADERS
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
    "cell": "--cell",
    "window": "--window",
    "hidden_size": "--hidden",
    "max_epochs": "--epochs",
    "patience": "--patience",
    "lr": "--lr",
    "batch_size": "--batch",
}
"""The regressor's settings by the options that set them."""
SERIES = tuple(LOADERS)


def forecast(
    dataset: Annotated[
        str, Opt("--dataset", help=f"The series (shipped in statsmodels): {', '.join(SERIES)}.")
    ] = "sunspots",
    cell: Annotated[str, Opt("--cell", help="Our network: lstm or rnn (the simple RNN).")] = "lstm",
    window: Annotated[
        int | None,
        Opt("--window", show_default="2 x horizon", help="Values per input window."),
    ] = None,
    difference: Annotated[
        bool | None,
        Opt(
            "--difference/--no-difference",
            show_default="when the KPSS test finds a trend",
            help="Model first differences (the d = 1 of ARIMA).",
        ),
    ] = None,
    hidden: Annotated[int, Opt("--hidden", help="Hidden units.")] = 32,
    epochs: Annotated[int, Opt("--epochs", help="At most this many epochs.")] = 300,
    patience: Annotated[
        int, Opt("--patience", help="Stop after this many epochs without a better validation loss.")
    ] = 30,
    lr: Annotated[float, Opt("--lr", help="Adam's learning rate.")] = 3e-3,
    batch: Annotated[int, Opt("--batch", help="Windows per step.")] = 32,
    seeds: Annotated[int, Opt("--seeds", help="Train our network with seeds 0 .. N-1.")] = 3,
    out: Annotated[
        Path, Opt("--out", help="Parent folder of the run folder forecast-<time>/.")
    ] = RUNS,
    progress: Annotated[bool, Opt("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Forecast a series with our LSTM beside persistence, seasonal naive, AutoARIMA, AutoETS.

    One-step and multi-step (recursive and direct) forecasts over the series' fixed test
    period, RMSE and MAE. Writes metrics.json, forecast.png, gradient.png, models/ and
    report.html into the run folder.
    """
    from vanishing.apps.timeseries.errors import DataError
    from vanishing.apps.timeseries.forecast_run import (
        COLUMNS,
        NetworkSettings,
        best,
        rows,
        run_forecast,
        total_fits,
        write_forecast_run,
    )
    from vanishing.apps.timeseries.series import load_series

    if seeds < 1:
        fail(f"--seeds must be at least 1, got {seeds}")
    try:
        series = load_series(dataset)
        settings = NetworkSettings(
            cell, window, hidden, epochs, patience, 0.1, lr, batch, difference
        )
        settings.check(series)
    except (DataError, ValueError) as error:
        fail(as_option(str(error), OPTIONS))
    run_dir = new_run_dir(out, f"forecast-{series.name}")
    console.print(
        f"[bold]vanishing forecast[/]: {series.name}, {len(series.train)} training and "
        f"{len(series.test)} test values, horizon {series.horizon} -> {run_dir}"
    )
    with steps(total_fits(series, range(seeds)), progress) as start:
        entries = run_forecast(series, settings, range(seeds), start)
    paths = write_forecast_run(run_dir, series, settings, entries, run_meta())
    print_table(f"{series.name}: test-period RMSE and MAE ({series.unit})", COLUMNS, rows(entries))
    console.print(
        f"lowest one-step RMSE: {best(entries, 'one-step')}; lowest {series.horizon}-step "
        f"RMSE: {best(entries, 'recursive', 'direct')}"
    )
    console.print(f"report: {paths['report']}")
