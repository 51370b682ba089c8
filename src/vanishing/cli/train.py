"""`vanishing train`: one model on one task until it succeeds or its budget is used."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vanishing.cli.common import RUNS, console, errors, fail, new_run_dir
from vanishing.nn.activations import NAMES
from vanishing.tasks import TASKS
from vanishing.train import MODELS, OPTIMIZERS, ModelConfig, RunConfig, TrainConfig

Opt = typer.Option


def default(cls: type, name: str) -> str:
    """The dataclass field's default, as --help shows it."""
    return str(cls.__dataclass_fields__[name].default)


def as_option(message: str, names: set[str]) -> str:
    """'lr must be ...' -> '--lr must be ...' when the message starts with an option's name."""
    first, _, rest = message.partition(" ")
    return f"--{first.replace('_', '-')} {rest}" if first in names else message


def train(
    task: Annotated[
        str | None, Opt("--task", show_default="adding", help=f"One of: {', '.join(TASKS)}.")
    ] = None,
    T: Annotated[
        int | None,
        Opt("--T", show_default="100", help="Sequence length or lag (reber has none)."),
    ] = None,
    model: Annotated[
        str | None, Opt("--model", show_default="lstm", help=" or ".join(MODELS) + ".")
    ] = None,
    nonlinearity: Annotated[
        str | None,
        Opt("--nonlinearity", show_default="tanh", help=f"RNN only: {', '.join(NAMES)}."),
    ] = None,
    forget_bias: Annotated[
        float | None,
        Opt(
            "--forget-bias",
            show_default="chrono",
            help="LSTM only: add this to the forget-gate bias instead of chrono initialisation.",
        ),
    ] = None,
    chrono: Annotated[
        bool,
        Opt("--chrono", help="LSTM only: chrono initialisation (Tallec & Ollivier 2018; default)."),
    ] = False,
    hidden: Annotated[int | None, Opt("--hidden", show_default="32", help="Hidden units.")] = None,
    optimizer: Annotated[
        str | None, Opt("--optimizer", show_default="adam", help=" | ".join(OPTIMIZERS) + ".")
    ] = None,
    lr: Annotated[
        float | None, Opt("--lr", show_default=default(TrainConfig, "lr"), help="Learning rate.")
    ] = None,
    clip: Annotated[
        float | None, Opt("--clip", help="Clip the gradient norm at this (Pascanu et al.).")
    ] = None,
    batch: Annotated[
        int | None,
        Opt("--batch", show_default=default(TrainConfig, "batch"), help="Sequences per step."),
    ] = None,
    budget: Annotated[
        int | None,
        Opt(
            "--budget",
            show_default=default(TrainConfig, "budget"),
            help="Training sequences; unsolved by then is a failure.",
        ),
    ] = None,
    eval_every: Annotated[
        int | None,
        Opt(
            "--eval-every",
            show_default=default(TrainConfig, "eval_every"),
            help="Steps between held-out evaluations (and checkpoints).",
        ),
    ] = None,
    test_size: Annotated[
        int | None,
        Opt("--test-size", show_default=default(TrainConfig, "test_size"), help="Held-out set."),
    ] = None,
    gradflow_every: Annotated[
        int | None,
        Opt(
            "--gradflow-every",
            show_default="0 (off)",
            help="Steps between measurements of the gradient horizon and norms by lag of the "
            "training step (vanishing.monitor), into metrics.jsonl.",
        ),
    ] = None,
    seed: Annotated[
        int | None, Opt("--seed", show_default="0", help="Seed of the weights and data.")
    ] = None,
    impl: Annotated[
        str | None,
        Opt("--impl", show_default="vanishing", help="vanishing (our layers) or torch (torch.nn)."),
    ] = None,
    out: Annotated[
        Path | None, Opt("--out", help="Parent folder of the run folder train-<time>/.")
    ] = None,
    resume: Annotated[
        Path | None,
        Opt(
            "--resume", help="Continue the run in this folder (its config.json; no other options)."
        ),
    ] = None,
    progress: Annotated[bool, Opt("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Train one model on one task; stop at the task's success criterion or the budget.

    Writes config.json, metrics.jsonl, checkpoints/ and result.json into the run folder.
    """
    from vanishing.train import CheckpointError, load_config, run

    model_values = dict(
        model=model,
        nonlinearity=nonlinearity,
        forget_bias=forget_bias,
        chrono=chrono or None,
        hidden=hidden,
        impl=impl,
    )
    train_values = dict(
        optimizer=optimizer,
        lr=lr,
        clip=clip,
        batch=batch,
        budget=budget,
        eval_every=eval_every,
        test_size=test_size,
        gradflow_every=gradflow_every,
        seed=seed,
    )
    given = {
        k: v
        for k, v in {**model_values, **train_values, "task": task, "T": T}.items()
        if v is not None
    }
    if budget is not None and budget < 1:
        fail(f"--budget must be >= 1 training sequence, got {budget}")
    try:
        if resume is not None:
            if given or out is not None:
                options = ", ".join("--" + k.replace("_", "-") for k in given) or "--out"
                fail(f"--resume continues the run as its config.json says; drop {options}")
            config = load_config(resume)
            run_dir = resume
        else:
            config = RunConfig(
                task or "adding",
                T,
                ModelConfig(**{k: v for k, v in model_values.items() if v is not None}),
                TrainConfig(**{k: v for k, v in train_values.items() if v is not None}),
            )
            run_dir = new_run_dir(out or RUNS, "train")
    except (ValueError, TypeError) as error:
        fail(as_option(str(error), {*model_values, *train_values}))
    m, t = config.model, config.train
    console.print(
        f"[bold]vanishing train[/]: {config.name} -> {run_dir}\n{m.label}, H = {m.hidden}, "
        f"{t.optimizer} lr {t.lr:g}, batch {t.batch}, clip {t.clip}, budget {t.budget:,} sequences"
    )
    try:
        result = run(config, run_dir, resume=resume is not None, progress=progress)
    except CheckpointError as error:
        fail(str(error))
    final = result.final
    correct = "-" if final.correct is None else f"{final.correct:.2%}"
    console.print(
        f"{result.status}: {result.sequences:,} sequences, {result.steps:,} steps, "
        f"held-out loss {final.loss:.4g} (baseline {config.make_task().objective.baseline:.4g}), "
        f"correct {correct}, {result.seconds:.1f} s"
    )
    if result.sequences_to_success is not None:
        console.print(f"solved after {result.sequences_to_success:,} training sequences")
    if result.status == "diverged":
        errors.print(
            f"[bold red]Diverged:[/] {result.message}; the last good checkpoint is in "
            f"{run_dir / 'checkpoints'}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=1)
