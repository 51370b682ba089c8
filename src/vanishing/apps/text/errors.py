"""The one error type of apps/text: a bad data or vocabulary file, named with its line."""

from __future__ import annotations


class TextDataError(ValueError):
    """A file (or generated data set) that cannot be used as given.

    The message starts with where the problem is (``path`` or ``path, line N``), then says what
    was expected and what came, so a command can print it as its one-line error.
    """


def where(path: object, line: int | None = None) -> str:
    """``path`` or ``path, line N``: the prefix of every TextDataError message."""
    return f"{path}" if line is None else f"{path}, line {line}"
