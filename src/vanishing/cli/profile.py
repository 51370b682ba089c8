"""`vanishing profile`: the gradient flow of one untrained model by lag, table and figure (a)."""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from vanishing.cli.common import (
    RUNS,
    SEED_MAX,
    Detail,
    Nonlinearity,
    check_memory,
    console,
    fail,
    layer_bytes,
    new_run_dir,
    one_line_errors,
)


class ModelKind(str, Enum):
    rnn = "rnn"
    lstm = "lstm"


def lags_to_show(T: int, rows: int = 10) -> list[int]:
    """About `rows` lags from 0 to T - 1, always including both ends."""
    return sorted({*range(0, T, max(1, T // rows)), T - 1})


def _number(value: float) -> str:
    return "-" if value != value else f"{value:.3e}"  # NaN: not measured at this detail


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
    seed: Annotated[
        int,
        typer.Option("--seed", min=0, max=SEED_MAX, help="Seed for the weights and the data."),
    ] = 0,
    detail: Annotated[
        Detail,
        typer.Option(
            "--detail",
            help="norms: gradient norms by lag only; terms: also the Jacobian products (and "
            "the LSTM's A, B, C, D); exact: exact spectral norms at every hidden size.",
        ),
    ] = Detail.terms,
    out: Annotated[
        Path, typer.Option("--out", help="Parent folder of the run folder profile-<time>/.")
    ] = RUNS,
) -> None:
    """Gradient norm by lag of one untrained model (no training): table and figure (a)."""
    from rich.table import Table

    from vanishing.experiments.untrained import draw_untrained, measure_untrained

    if model is ModelKind.lstm and nonlinearity is not None:
        fail("--nonlinearity applies to --model rnn only (the LSTM's gates are fixed)")
    if model is ModelKind.rnn and forget_bias != 0.0:
        fail("--forget-bias applies to --model lstm only")
    for name, value in (("--rec-scale", rec_scale), ("--forget-bias", forget_bias)):
        if not math.isfinite(value):
            fail(f"{name} must be a finite number, got {value}")
    act = (nonlinearity or Nonlinearity.tanh).value
    measured = 0 if detail is Detail.norms else batch  # sequences with H x H Jacobians
    needed = layer_bytes(
        model.value, T, batch, hidden, measured, measured if model is ModelKind.lstm else 0
    )
    check_memory(needed, f"--T {T} --hidden {hidden} --batch {batch} --detail {detail.value}")
    run_dir = new_run_dir(out, "profile")
    try:
        with one_line_errors():
            result = measure_untrained(
                model.value, act, T, hidden, rec_scale, forget_bias, batch, seed, detail.value
            )
    except (ValueError, TypeError) as error:
        fail(str(error))
    figure = draw_untrained(result, run_dir)

    p = result.profile
    table = Table(title=f"{result.name}: gradient flow by lag k - t (loss at k = {T})")
    table.add_column("lag k-t", justify="right")
    table.add_column("||dE/dh_t||", justify="right")
    if p.dc_norm is not None:
        table.add_column("||dE/dc_t||", justify="right")
    table.add_column("relative to lag 0", justify="right")
    table.add_column("||prod Jacobians||", justify="right")
    if p.bound is not None:
        table.add_column("bound (gamma lambda_1)^lag", justify="right")
    for lag in lags_to_show(T):
        row = [str(lag), _number(p.dh_norm[lag])]
        if p.dc_norm is not None:
            row.append(_number(p.dc_norm[lag]))
        row += [_number(p.ratio_at(lag)), _number(p.jacobian_norm[lag])]
        if p.bound is not None:
            row.append(_number(p.bound[lag]))
        table.add_row(*row)
    console.print(table)

    line = f"gradient horizon: {p.horizon} (largest lag with norm >= 1e-3 x lag 0)"
    if result.gamma is not None:
        gl = result.gamma * result.lambda_1
        regime = "vanishing guaranteed" if gl < 1 else "exploding possible"
        line += f"; lambda_1 = {result.lambda_1:.3f}, gamma*lambda_1 = {gl:.3f} ({regime})"
        within = result.within_bound()
        if within is not None:
            line += f"\nJacobian-product norm <= bound at every lag: {'yes' if within else 'NO'}"
    console.print(line)
    console.print(f"figure: {figure}")
