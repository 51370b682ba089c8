"""`vanishing experiments`: the long-time-lag suite on a process pool or a Ray cluster."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from vanishing.cli.common import RUNS, console, errors, fail, new_run_dir

Opt = typer.Option


def experiments(
    tasks: Annotated[
        str | None,
        Opt("--tasks", help="Comma-separated tasks, each optionally at one length: adding:1000."),
    ] = None,
    models: Annotated[
        str, Opt("--models", help="Comma-separated: lstm, rnn-tanh, rnn-sigmoid, rnn-relu.")
    ] = "lstm,rnn-tanh",
    seeds: Annotated[
        int | None, Opt("--seeds", show_default="3; --quick 1", help="Seeds per task and model.")
    ] = None,
    workers: Annotated[
        int | None,
        Opt("--workers", show_default="the core count", help="Processes (or Ray CPUs, local)."),
    ] = None,
    ray: Annotated[
        str | None,
        Opt("--ray", help="Run on Ray: HOST:PORT or auto (a cluster), local (start one here)."),
    ] = None,
    budget: Annotated[
        int | None, Opt("--budget", help="Training sequences per run (default: per task).")
    ] = None,
    quick: Annotated[
        bool, Opt("--quick", help="Short lengths, small budgets, one seed: under a minute.")
    ] = False,
    hidden: Annotated[int, Opt("--hidden", help="Hidden units of every model.")] = 32,
    lr: Annotated[float | None, Opt("--lr", help="Learning rate (default: per task).")] = None,
    batch: Annotated[int | None, Opt("--batch", show_default="16", help="Sequences/step.")] = None,
    optimizer: Annotated[
        str | None, Opt("--optimizer", show_default="adam", help="sgd | momentum | adam.")
    ] = None,
    clip: Annotated[float | None, Opt("--clip", help="Gradient-norm clipping threshold.")] = None,
    forget_bias: Annotated[
        float | None, Opt("--forget-bias", help="LSTM: this forget-gate bias instead of chrono.")
    ] = None,
    out: Annotated[
        Path, Opt("--out", help="Parent folder of the suite folder experiments-<time>/.")
    ] = RUNS,
    resume: Annotated[
        Path | None,
        Opt(
            "--resume", help="Finish the suite in this folder: keep finished runs, resume the rest."
        ),
    ] = None,
    progress: Annotated[bool, Opt("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Run the long-time-lag suite: tasks x lengths x models x seeds.

    Writes results.md, results.json, figures and report.html into the suite folder.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    from vanishing.experiments.results import COLUMNS, cells
    from vanishing.experiments.runner import connect_ray, run_pool, run_ray
    from vanishing.experiments.suite import (
        FULL,
        QUICK,
        Settings,
        load_plan,
        parse_models,
        plan,
        save_plan,
        select,
    )  # fmt: skip
    from vanishing.experiments.suite_report import machine, write_suite_report

    started = time.perf_counter()
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        fail(f"--workers must be >= 1, got {workers}")
    if budget is not None and budget < 1:
        fail(f"--budget must be >= 1 training sequence, got {budget}")
    command = "vanishing " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "vanishing experiments"
    try:
        if resume is not None:
            configs, command = load_plan(resume)
        else:
            settings = Settings(hidden, batch, lr, optimizer, clip, budget, forget_bias)
            entries = select(QUICK if quick else FULL, tasks)
            configs = plan(entries, parse_models(models), seeds or (1 if quick else 3), settings)
    except (ValueError, TypeError) as error:
        fail(str(error))
    started_ray = False
    if ray is not None:
        try:
            started_ray = connect_ray(ray, workers)
        except (ImportError, ConnectionError) as error:
            fail(str(error))
    folder = resume if resume is not None else new_run_dir(out, "experiments")
    if resume is None:
        save_plan(folder, configs, command)
    backend = f"Ray ({ray})" if ray else f"{workers} worker processes"
    console.print(f"[bold]vanishing experiments[/]: {len(configs)} runs on {backend} -> {folder}")
    bar = Progress(
        TextColumn("runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console, disable=not progress,
    )  # fmt: skip

    def finished(record: dict) -> None:
        seqs = record["sequences_to_success"] or record["sequences"]
        bar.console.print(
            f"  {record['name']}: {record['status']}"
            + (f" after {seqs:,} sequences" if seqs is not None else f" ({record['message']})")
        )
        bar.advance(bar_id)

    with bar:
        bar_id = bar.add_task("runs", total=len(configs))
        try:
            if ray is not None:
                outcomes = run_ray(configs, folder / "runs", resume is not None, finished)
            else:
                outcomes = run_pool(configs, folder / "runs", workers, resume is not None, finished)
        finally:
            if started_ray:
                import ray as ray_module

                ray_module.shutdown()
    meta = {**machine(), "command": command, "backend": backend,
            "wall_seconds": time.perf_counter() - started, "runs": len(configs)}  # fmt: skip
    report = write_suite_report(outcomes, folder, meta)
    table = Table(title="Long-time-lag suite")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("task", "model") else "right")
    for row in report.rows:
        table.add_row(*cells(row))
    console.print(table)
    console.print(f"results: {report.results_md}\nreport: {report.html}")
    console.print(f"wall time: {meta['wall_seconds'] / 60:.1f} min")
    failed = [r for r in outcomes if r["status"] == "error"]
    if failed:
        errors.print(
            f"[bold red]{len(failed)} run(s) failed[/] (see results.md); finish them with: "
            f"vanishing experiments --resume {folder}", highlight=False, soft_wrap=True,
        )  # fmt: skip
        raise typer.Exit(code=1)
