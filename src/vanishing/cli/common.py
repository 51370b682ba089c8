"""What every command shares: the consoles, one-line errors, the run folder, option choices,
the checks made before any work (memory) and the one-line report of what fails during it."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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


def choices(name: str, values: Sequence[str]) -> type[Enum]:
    """A CLI choice type from one of the library's tables."""
    return Enum(name, {v: v for v in values}, type=str)


Nonlinearity = choices("Nonlinearity", NAMES)
"""The RNN's activations as CLI choices (from `nn.activations`)."""

Detail = choices("Detail", DETAILS)
"""How much `vanishing.profile` measures, as CLI choices (from `gradflow.DETAILS`)."""


SEED_MAX = 2**32 - 1
"""Seeds are 0 .. 2**32 - 1 (the commands derive further seeds from them)."""


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


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def layer_bytes(
    kind: str, T: int, batch: int, hidden: int, jacobians: int = 0, terms: int = 0
) -> int:
    """A generous estimate of the memory one float64 layer (input size 2) needs to run
    forward, backward, recording and measurement: 8 copies of its weights (parameters,
    gradients, optimizer state, the profile's copy), 8 numbers per gate and step (cache,
    gradients, traces), 4 H x H matrices per sequence whose Jacobian products are measured
    (`jacobians`), and the LSTM's four H x H terms per step for `terms` sequences."""
    gates = (4 if kind.startswith("lstm") else 1) * hidden
    matrices = 4 * jacobians * hidden**2 + 4 * terms * T * hidden**2
    return 8 * (8 * gates * (hidden + 4) + 8 * T * batch * gates + matrices)


def check_memory(needed: int, options: str) -> None:
    """Fail before any work if needed bytes exceed the memory available now."""
    available = available_memory()
    if available is not None and needed > available:
        fail(
            f"{options}: this needs about {_size(needed)} of memory and {_size(available)} "
            "are available; choose smaller sizes"
        )


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("not reached")


@contextmanager
def one_line_errors() -> Iterator[None]:
    """What fails during the work (memory running out) as a one-line error, no traceback."""
    try:
        yield
    except MemoryError:
        fail("out of memory; choose smaller sizes")
    except RuntimeError as error:
        if "can't allocate memory" not in str(error) and "out of memory" not in str(error):
            raise
        fail(f"out of memory ({str(error).splitlines()[0]}); choose smaller sizes")


@contextmanager
def steps(total: int, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A rich progress bar over `total` steps; yields start(name), called as each step starts
    (the bar counts the steps finished before it, and all of them when the block ends)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, disable=not enabled, transient=False) as progress:
        task = progress.add_task("starting", total=total)
        started = [0]

        def start(name: str) -> None:
            progress.update(task, description=name, completed=started[0])
            started[0] += 1

        yield start
        progress.update(task, description="done", completed=total)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A rich table of rows under columns on the console."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for k, column in enumerate(columns):
        table.add_column(column, justify="left" if k == 0 else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)


def run_meta() -> dict[str, object]:
    """The machine (CPU, cores, ISA, torch, date) and the command line, for a run's records."""
    import shlex
    import sys

    from vanishing.report.machine import machine

    argv = ["vanishing", *sys.argv[1:]]
    return {**machine(), "command": " ".join(shlex.quote(a) for a in argv)}


def as_option(message: str, options: dict[str, str]) -> str:
    """A settings error as the options say it: "LSTMClassifier: max_epochs must ..." or
    "max_epochs must ..." -> "--epochs must ..." for options {"max_epochs": "--epochs"}."""
    body = re.sub(r"^[A-Z]\w*: ", "", message)
    first, _, rest = body.partition(" ")
    return f"{options[first]} {rest}" if first in options else message
