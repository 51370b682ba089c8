"""The `vanishing` command line: one thin module per command (parse options, call the
library, print); `common.py` holds what they share. No command imports another."""

from __future__ import annotations

import typer

from vanishing.cli import demo, experiments, profile, train
from vanishing.cli.common import console

app = typer.Typer(
    help="Make the vanishing-gradient problem of recurrent networks visible and measurable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.command()(demo.demo)
app.command()(profile.profile)
app.command()(train.train)
app.command()(experiments.experiments)


@app.command()
def version() -> None:
    """Print the installed version."""
    from vanishing import __version__

    console.print(__version__)
