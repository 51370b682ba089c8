"""The `vanishing` command line: `demo` (the main job), `profile`, `version`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="Make the vanishing-gradient problem of recurrent networks visible and measurable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()
errors = Console(stderr=True)


class ModelKind(str, Enum):
    rnn = "rnn"
    lstm = "lstm"


class Nonlinearity(str, Enum):
    sigmoid = "sigmoid"
    tanh = "tanh"
    relu = "relu"


def fail(message: str) -> None:
    """Print a one-line error (no traceback) and exit with status 2, like a usage error."""
    errors.print(f"[bold red]Error:[/] {message}", highlight=False)
    raise typer.Exit(code=2)


RUNS = Path("runs")


@app.command()
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
    seed: Annotated[int, typer.Option("--seed", help="Seed for the weights and the data.")] = 0,
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
    from vanishing.demo import DemoConfig, main, parse_models

    try:
        overrides = {
            k: v for k, v in (("T", T), ("hidden", hidden), ("steps", steps)) if v is not None
        }
        common = dict(seed=seed, out=out, models=parse_models(models), **overrides)
        config = DemoConfig.quick(**common) if quick else DemoConfig(**common)
    except (ValueError, TypeError) as error:
        fail(str(error))
    main(config, console)


@app.command()
def profile(
    model: Annotated[
        ModelKind, typer.Option("--model", help="Recurrent layer to measure.")
    ] = ModelKind.rnn,
    nonlinearity: Annotated[
        Nonlinearity | None,
        typer.Option(
            "--nonlinearity",
            show_default="tanh",
            help="The RNN's activation (sigmoid: the article's; it needs --rec-scale ~40 "
            "to explode).",
        ),
    ] = None,
    T: Annotated[int, typer.Option("--T", min=2, help="Sequence length (largest lag T-1).")] = 100,
    hidden: Annotated[int, typer.Option("--hidden", min=1, help="Hidden units.")] = 64,
    rec_scale: Annotated[
        float,
        typer.Option(
            "--rec-scale", help="Multiply W_rec by this; lambda_1 > 1/gamma allows explosion."
        ),
    ] = 1.0,
    forget_bias: Annotated[
        float, typer.Option("--forget-bias", help="LSTM only: added to the forget-gate bias.")
    ] = 0.0,
    batch: Annotated[
        int, typer.Option("--batch", min=1, help="Sequences in the probe batch.")
    ] = 16,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the weights and the data.")] = 0,
    out: Annotated[
        Path, typer.Option("--out", help="Parent folder of the run folder profile-<time>/.")
    ] = RUNS,
) -> None:
    """Gradient norm by lag of one untrained model (no training): table and figure (a)."""
    from vanishing.untrained import profile_table, run_profile

    if model is ModelKind.lstm and nonlinearity is not None:
        fail("--nonlinearity applies to --model rnn only (the LSTM's gates are fixed)")
    if model is ModelKind.rnn and forget_bias != 0.0:
        fail("--forget-bias applies to --model lstm only")
    act = (nonlinearity or Nonlinearity.tanh).value
    try:
        result = run_profile(model.value, act, T, hidden, rec_scale, forget_bias, batch, seed, out)
    except (ValueError, TypeError) as error:
        fail(str(error))
    console.print(profile_table(result))
    p = result.profile
    line = f"gradient horizon: {p.horizon} (largest lag with norm >= 1e-3 x lag 0)"
    if result.gamma is not None:
        gl = result.gamma * result.lambda_1
        regime = "vanishing guaranteed" if gl < 1 else "exploding possible"
        line += f"; lambda_1 = {result.lambda_1:.3f}, gamma*lambda_1 = {gl:.3f} ({regime})"
        within = bool((p.jacobian_norm <= p.bound * (1 + 1e-9)).all())
        line += f"\nJacobian-product norm <= bound at every lag: {'yes' if within else 'NO'}"
    console.print(line)
    console.print(f"figure: {result.figure}")


@app.command()
def version() -> None:
    """Print the installed version."""
    from vanishing import __version__

    console.print(__version__)


if __name__ == "__main__":
    app()
