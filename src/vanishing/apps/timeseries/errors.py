"""One clear error for bad data: where it is (file, line), what was expected, what came."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input data, in one line: "<where>: expected <expected>, got <got>".

    where is a file (and line: "cases.csv, line 7"), a data set name or an argument name.
    """

    def __init__(self, where: str | Path, expected: str, got: str, line: int | None = None):
        self.where = f"{where}, line {line}" if line is not None else str(where)
        self.expected, self.got = expected, got
        super().__init__(f"{self.where}: expected {expected}, got {got}")
