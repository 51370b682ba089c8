"""The temporal order problem (Hochreiter & Schmidhuber 1997, tasks 6a and 6b).

A sequence of distractor symbols hides two (6a) or three (6b) relevant symbols, each X or Y,
at widely separated random positions; its class is their order (XX, XY, YX, YY for 6a). The
class is asked for only at the end, so the first relevant symbol must be kept ~50-90 steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from vanishing.tasks.batch import (
    Batch,
    LengthTask,
    Objective,
    pad_after,
    random_lengths,
)

SYMBOLS = ("E", "B", "a", "b", "c", "d", "X", "Y")
"""Input symbols, one-hot in this order: start E, trigger B, distractors a-d, relevant X, Y."""
START, TRIGGER, X = 0, 1, 6
DISTRACTORS = (2, 6)  # a .. d


def windows(T: int, relevant: int) -> list[tuple[int, int]]:
    """Where each relevant symbol may be (both ends included); at T = 100 the paper's
    [10, 20], [50, 60] (6a) and [10, 20], [33, 43], [66, 76] (6b)."""
    if relevant == 2:
        return [(T // 10, 2 * T // 10), (T // 2, T // 2 + T // 10)]
    return [(T // 10, 2 * T // 10), (33 * T // 100, 43 * T // 100), (66 * T // 100, 76 * T // 100)]


@dataclass(frozen=True)
class TemporalOrder(LengthTask):
    """1997 task 6a: two relevant symbols, 4 classes (`TemporalOrder3` is 6b: three, 8).

    Encoding: one-hot over E, B, a, b, c, d, X, Y (8 inputs); length T .. T + T/10 (the paper:
    T = 100); E first, B (the trigger) last, distractors a-d elsewhere except at the relevant
    positions (`windows`), each X or Y. Target: the class, sum_j [symbol j is Y] 2^(k-1-j)
    (XX = 0, XY = 1, YX = 2, YY = 3), asked at the last step. Success: every held-out
    sequence classified right (the paper: its outputs within 0.3 of the targets; 6a needed
    31,390 sequences, 1/2560 test sequences wrong; 6b 571,100, 2/2560 wrong). Baseline:
    uniform guess, cross-entropy log 4 (6a), log 8 (6b).
    """

    name: ClassVar[str] = "temporal-order"
    shortest: ClassVar[int | None] = 20
    relevant: ClassVar[int] = 2
    input_size: ClassVar[int] = len(SYMBOLS)

    @property
    def objective(self) -> Objective:
        classes = 2**self.relevant
        return Objective(
            "classification", classes, baseline=math.log(classes), baseline_note="uniform guess"
        )

    def generate(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype) -> Batch:
        lengths = random_lengths(batch, self.T, self.max_length, generator)  # (B,)
        L = int(lengths.max())
        columns = torch.arange(batch)
        symbols = torch.randint(*DISTRACTORS, (L, batch), generator=generator)  # (L, B)
        symbols[0] = START
        symbols[lengths - 1, columns] = TRIGGER
        is_y = torch.randint(0, 2, (self.relevant, batch), generator=generator)  # (k, B)
        for j, (low, high) in enumerate(windows(self.T, self.relevant)):
            where = torch.randint(low, high + 1, (batch,), generator=generator)  # (B,)
            symbols[where, columns] = X + is_y[j]
        weights = 2 ** torch.arange(self.relevant - 1, -1, -1)  # (k,) 2^(k-1-j)
        y = (is_y * weights.unsqueeze(1)).sum(dim=0)  # (B,) int64 class
        x = pad_after(F.one_hot(symbols, len(SYMBOLS)).to(dtype), lengths)  # (L, B, 8)
        return Batch(x, y, lengths)


@dataclass(frozen=True)
class TemporalOrder3(TemporalOrder):
    """1997 task 6b: as `TemporalOrder` with three relevant symbols and 8 classes."""

    name: ClassVar[str] = "temporal-order-3"
    relevant: ClassVar[int] = 3
