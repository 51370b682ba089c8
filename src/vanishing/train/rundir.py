"""Run folders: one new folder per run, named by kind and time, never reused."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def make_run_dir(parent: Path, prefix: str) -> Path:
    """parent/<prefix>-YYYYmmdd-HHMMSS (with -2, -3 ... if that exists), created."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, k = parent / f"{prefix}-{stamp}", 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            k += 1
            path = parent / f"{prefix}-{stamp}-{k}"
