"""`vanishing demo`: train three models on the adding problem; print the table, write the report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from vanishing.cli.common import (
    RUNS,
    SEED_MAX,
    check_memory,
    console,
    fail,
    layer_bytes,
    new_run_dir,
    one_line_errors,
)


def demo(
    T: Annotated[
        int | None,
        typer.Option(
            "--T", min=2, show_default="100", help="Sequence length of the adding problem."
        ),
    ] = None,
    hidden: Annotated[
        int | None,
        typer.Option("--hidden", min=1, show_default="64", help="Hidden units per model."),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps", min=0, show_default="2500", help="Adam steps per model (same batches)."
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option("--seed", min=0, max=SEED_MAX, help="Seed for the weights and the data."),
    ] = 0,
    out: Annotated[
        Path, typer.Option("--out", help="Parent folder of the run folder demo-<time>/.")
    ] = RUNS,
    models: Annotated[
        str,
        typer.Option("--models", help="Comma-separated subset of: rnn-sigmoid, rnn-tanh, lstm."),
    ] = "rnn-sigmoid,rnn-tanh,lstm",
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Small run, under 30 s (T 30, H 32, 200 steps); for tests."),
    ] = False,
) -> None:
    """Train a sigmoid RNN, a tanh RNN and an LSTM on the adding problem; measure and report.

    Prints a table and writes runs/demo-<time>/report.html with four figures.

    All models: Adam, lr 3e-3, batch 64, same batches; the LSTM has forget_bias=1.
    """
    from vanishing.experiments.demo import DemoConfig, display_name, parse_models, run_demo
    from vanishing.experiments.demo_report import results_table, write_demo_report

    started = time.perf_counter()
    try:
        overrides = {
            k: v for k, v in (("T", T), ("hidden", hidden), ("steps", steps)) if v is not None
        }
        common = dict(seed=seed, out=out, models=parse_models(models), **overrides)
        config = DemoConfig.quick(**common) if quick else DemoConfig(**common)
    except (ValueError, TypeError) as error:
        fail(str(error))
    c = config
    needed = sum(  # the models train side by side
        layer_bytes(m, c.T, max(c.batch, c.probe), c.hidden, c.probe, c.terms_probe)
        for m in c.models
    )
    check_memory(needed, f"--T {c.T} --hidden {c.hidden}")
    run_dir = new_run_dir(config.out, "demo")
    console.print(
        f"[bold]vanishing demo[/]: {', '.join(display_name(m, c) for m in c.models)} on the "
        f"adding problem, T = {c.T}, H = {c.hidden}, {c.steps} steps, seed {c.seed}"
    )
    with one_line_errors():
        result = run_demo(config, console)
        written = write_demo_report(result, run_dir)
    console.print(results_table(result))
    console.print(f"report: {written.report}")
    console.print(f"figures: {', '.join(str(p.name) for p in written.figures.values())}")
    console.print(f"total time: {time.perf_counter() - started:.1f} s")
