"""`python -m vanishing.cli`."""

from vanishing.cli import app

app()
