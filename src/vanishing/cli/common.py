"""What every command shares: the consoles, one-line errors, the run folder, option choices."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.console import Console

from vanishing.gradflow import DETAILS
from vanishing.nn.activations import NAMES
from vanishing.train import make_run_dir

console = Console()
errors = Console(stderr=True)

RUNS = Path("runs")
"""Default parent folder of every command's run folder."""

Nonlinearity = Enum("Nonlinearity", {name: name for name in NAMES}, type=str)
"""The RNN's activations as CLI choices (from `nn.activations`)."""

Detail = Enum("Detail", {name: name for name in DETAILS}, type=str)
"""How much `vanishing.profile` measures, as CLI choices (from `gradflow.DETAILS`)."""


def fail(message: str) -> None:
    """Print a one-line error (no traceback) and exit with status 2, like a usage error."""
    errors.print(f"[bold red]Error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def new_run_dir(parent: Path, prefix: str) -> Path:
    """A new run folder under parent, made before any work, or a one-line error saying why not."""
    try:
        return make_run_dir(parent, prefix)
    except OSError as error:
        fail(f"--out {parent}: cannot create a run folder there ({error.strerror or error})")
    raise AssertionError("not reached")  # fail() exits
