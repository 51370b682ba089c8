"""Measuring a model on the held-out set, and the run's metrics.jsonl log.

metrics.jsonl has one JSON object per line: each evaluation ({"event": "eval", "step", ...})
and whatever the callbacks return ({"step", ...}). A resumed run first drops the lines newer
than its checkpoint, so the log matches the run it continues.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vanishing.tasks import Batch, Objective
from vanishing.train.checkpoint import write_atomic


@dataclass
class Evaluation:
    """One evaluation: loss on the held-out set, fraction of sequences correct (None if the
    objective has no success test), whether that meets the objective's requirement on the
    whole set, the mean training loss since the last evaluation, the run's seconds so far and
    how many held-out sequences were evaluated."""

    step: int
    sequences: int
    loss: float
    correct: float | None
    solved: bool
    train_loss: float | None = None
    seconds: float = 0.0
    evaluated: int = 0

    def record(self) -> dict[str, Any]:
        return {"event": "eval", **asdict(self)}


def evaluate(
    model: nn.Module, objective: Objective, held_out: Batch, eval_batch: int = 512
) -> tuple[float, float | None]:
    """(mean loss, fraction of sequences correct or None) over held_out, in chunks, no grad."""
    was_training = model.training
    model.eval()
    loss_sum, weight, right = 0.0, 0, 0
    has_test = objective.has_success_test
    with torch.no_grad():
        for start in range(0, held_out.size, eval_batch):
            part = held_out.take(torch.arange(start, min(start + eval_batch, held_out.size)))
            output = model(part.x, part.lengths)
            if objective.kind == "regression" and not objective.per_step:
                loss_sum += torch.mean((output - part.y) ** 2).item() * part.size
                weight += part.size
            else:
                losses = objective.losses(output, part)
                loss_sum += losses.sum().item()
                weight += losses.numel()
            if has_test:
                right += int(objective.correct_sequences(output, part).sum())
    model.train(was_training)
    return loss_sum / max(weight, 1), (right / held_out.size if has_test else None)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line (non-finite floats as null) and flush it to the file."""
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(clean) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every whole JSON line of path (a line cut short by a kill is skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_jsonl(path: Path, step: int) -> None:
    """Keep only the records with step <= `step` (atomically)."""
    kept = [r for r in read_jsonl(path) if int(r.get("step", 0)) <= step]
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in kept).encode())
