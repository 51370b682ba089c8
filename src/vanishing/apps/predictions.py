"""A saved model's predictions for the cases of a file, as a table (`vanishing predict`)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from vanishing.train.checkpoint import write_atomic


@dataclass(frozen=True)
class Predictions:
    """columns and one row per case (the case's number first); summary: one line about them
    (e.g. the accuracy on the file's labels), or ""."""

    columns: list[str]
    rows: list[list[object]]
    summary: str = ""

    def write_csv(self, path: str | Path) -> Path:
        """The table as CSV (header, then one row per case), written atomically."""
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        write_atomic(Path(path), text.getvalue().encode())
        return Path(path)
