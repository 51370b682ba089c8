"""The suite's results: one row per task, length and model, against the published figure.

Per row: success rate over seeds; median training sequences to success over all seeds, a run
that failed counting as more than its budget (so the median is '> budget' when half or more
failed); median final fraction of held-out sequences wrong and final loss (with the task's
trivial baseline); the paper's figure and our median over it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from vanishing.experiments.paper import Published, published
from vanishing.experiments.runner import Outcome
from vanishing.tasks import make_task


@dataclass
class Row:
    """One task at one length, one model, over its seeds."""

    task: str
    T: int | None
    model: str
    runs: int
    solved: int
    errors: int
    median_sequences: float | None  # inf: more than the budget; None: no run finished
    budget: int
    final_wrong: float | None
    final_loss: float | None
    baseline: float
    paper: Published | None

    @property
    def success_rate(self) -> float:
        return self.solved / self.runs

    @property
    def ratio(self) -> float | None:
        """Our median sequences to success over the paper's (None if either is missing)."""
        if self.paper is None or self.paper.sequences is None or self.median_sequences is None:
            return None
        if math.isinf(self.median_sequences):
            return None
        return self.median_sequences / self.paper.sequences


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(outcomes: Sequence[Outcome]) -> list[Row]:
    """Rows in the order the outcomes' (task, T, model) first appear, seeds pooled."""
    groups: dict[tuple, list[Outcome]] = {}
    for record in sorted(outcomes, key=lambda r: (r["task"], r["T"] or 0, r["kind"], r["model"])):
        groups.setdefault((record["task"], record["T"], record["model"]), []).append(record)
    rows = []
    for (task, T, model), group in groups.items():
        finished = [r for r in group if r["status"] != "error"]
        to_success = [
            r["sequences_to_success"] if r["sequences_to_success"] is not None else math.inf
            for r in finished
        ]  # fmt: skip
        wrong = [1.0 - r["final_correct"] for r in finished if r["final_correct"] is not None]
        losses = [r["final_loss"] for r in finished if r["final_loss"] is not None]
        rows.append(
            Row(
                task, T, model, len(group),
                sum(r["status"] == "solved" for r in group),
                len(group) - len(finished),
                median(to_success), max(r["budget"] for r in group), median(wrong),
                median(losses), make_task(task, T).objective.baseline, published(task, T),
            )
        )  # fmt: skip
    return rows


def thousands(n: float) -> str:
    """74000 -> '74k', 1273000 -> '1.27M', 640 -> '640'."""
    if n >= 1e6:
        return f"{n / 1e6:.3g}M"
    if n >= 1e3:
        return f"{n / 1e3:.3g}k"
    return f"{n:.0f}"


COLUMNS = (
    "task", "T", "model", "solved", "sequences to success", "wrong at end", "loss (baseline)",
    "1997", "ours / 1997",
)  # fmt: skip


def cells(row: Row) -> list[str]:
    """One row of the results table as text."""
    if row.median_sequences is None:
        sequences = "-"
    elif math.isinf(row.median_sequences):
        sequences = f"> {thousands(row.budget)}"
    else:
        sequences = thousands(row.median_sequences)
    paper = "-"
    if row.paper is not None:
        paper = thousands(row.paper.sequences) if row.paper.sequences else row.paper.note
    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
    if row.ratio is None and row.paper is not None and row.paper.sequences:
        ratio = "not solved" if row.median_sequences is not None else "-"
    solved = f"{row.solved}/{row.runs}" + (f" ({row.errors} errors)" if row.errors else "")
    wrong = "-" if row.final_wrong is None else f"{row.final_wrong:.2%}"
    loss = "-" if row.final_loss is None else f"{row.final_loss:.3g} ({row.baseline:.3g})"
    T = "-" if row.T is None else str(row.T)
    return [row.task, T, row.model, solved, sequences, wrong, loss, paper, ratio]


def markdown_table(rows: Sequence[Row]) -> str:
    """The results as a Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in rows]
    return "\n".join(lines)
