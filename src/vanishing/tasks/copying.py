"""The copying memory task (Arjovsky, Shah & Bengio 2016; Hochreiter & Schmidhuber 1997).

Ten symbols, then a long blank gap, then a delimiter: the net must output the ten symbols,
in order, after the delimiter. Memoryless nets stay at the baseline of predicting blanks and
then guessing uniformly among the 8 symbols.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from vanishing.tasks.batch import Batch, LengthTask, Objective

BLANK, DELIMITER, SYMBOLS, COPIED = 0, 9, 8, 10
"""Input categories 0 .. 9: blank 0, data symbols 1 .. 8, delimiter 9; 10 symbols copied."""


@dataclass(frozen=True)
class Copying(LengthTask):
    """Copying memory with gap T.

    Encoding: one-hot over 10 categories; length T + 20: 10 symbols ~ U{1..8}, T - 1 blanks,
    the delimiter 9, 10 blanks. Target (class index at every step, 9 classes 0 .. 8): blank
    for the first T + 10 steps, then the 10 symbols in order. Success: every step's argmax
    right for every held-out sequence (Arjovsky et al. give no criterion: their LSTM and tanh
    RNN stay near the baseline for T >= 100). Baseline: blanks, then a uniform guess among the
    8 symbols: mean cross-entropy 10 log(8) / (T + 20).
    """

    name: ClassVar[str] = "copying"
    shortest: ClassVar[int | None] = 1
    input_size: ClassVar[int] = DELIMITER + 1

    @property
    def max_length(self) -> int:
        return self.T + 20

    @property
    def objective(self) -> Objective:
        return Objective(
            "classification",
            SYMBOLS + 1,
            per_step=True,
            baseline=COPIED * math.log(SYMBOLS) / (self.T + 20),
            baseline_note="blanks, then a uniform guess among 8 symbols",
        )

    def generate(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype) -> Batch:
        L = self.T + 20
        data = torch.randint(1, SYMBOLS + 1, (COPIED, batch), generator=generator)  # (10, B)
        inputs = torch.full((L, batch), BLANK, dtype=torch.long)  # (L, B)
        inputs[:COPIED] = data
        inputs[self.T + 9] = DELIMITER
        y = torch.full((L, batch), BLANK, dtype=torch.long)  # (L, B)
        y[L - COPIED :] = data
        x = F.one_hot(inputs, DELIMITER + 1).to(dtype)  # (L, B, 10)
        return Batch(x, y, torch.full((batch,), L, dtype=torch.long), per_step=True)
