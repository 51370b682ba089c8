"""The `vanishing` command line."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Make the vanishing-gradient problem of recurrent networks visible and measurable.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.command()
def demo(
    T: int = typer.Option(100, "--T", min=2, help="Sequence length (the largest time lag)."),
    hidden: int = typer.Option(32, "--hidden", min=1, help="Hidden size of every model."),
    batch: int = typer.Option(16, "--batch", min=1, help="Sequences in the random batch."),
    seed: int = typer.Option(0, "--seed", help="Random seed for weights and data."),
) -> None:
    """Per-step gradient norms ||dL/dh_t|| of RNNs and LSTMs at initialisation (float64)."""
    import torch

    from vanishing import LSTM, RNN, record

    torch.manual_seed(seed)
    f64 = torch.float64
    x = torch.randn(T, batch, 1, dtype=f64)  # (T, B, 1)
    models = {
        "RNN (sigmoid)": RNN(1, hidden, nonlinearity="sigmoid", dtype=f64),
        "RNN (tanh)": RNN(1, hidden, nonlinearity="tanh", dtype=f64),
        "LSTM": LSTM(1, hidden, dtype=f64),
        "LSTM (forget_bias=3)": LSTM(1, hidden, forget_bias=3.0, dtype=f64),
    }
    norms = {}
    for name, model in models.items():
        with record(model) as rec:
            out, _ = model(x)
            out[-1].sum().backward()  # loss at the last step k = T only
        dh = rec[""][0].dh  # (T, B, H) dL/dh_t
        norms[name] = dh.norm(dim=2).mean(dim=1)  # (T,) batch mean of ||dL/dh_t||
    table = Table(title=f"||dL/dh_t|| for a loss at step k = {T}, by lag k - t")
    table.add_column("lag k - t", justify="right")
    for name in models:
        table.add_column(name, justify="right")
    for lag in sorted({*range(0, T, max(1, T // 10)), T - 1}):
        table.add_row(str(lag), *(f"{norms[name][T - 1 - lag]:.2e}" for name in models))
    console.print(table)


@app.command()
def version() -> None:
    """Print the installed version."""
    from vanishing import __version__

    console.print(__version__)
