"""Latching (Bengio, Simard & Frasconi 1994), as the 1997 LSTM paper's two-sequence task 3.

Only the first N = 3 inputs tell the class; the rest of the sequence is Gaussian noise. The
class must be latched over the whole sequence and read at its end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from vanishing.tasks.batch import (
    Batch,
    LengthTask,
    Objective,
    pad_after,
    random_lengths,
)

INFORMATIVE = 3
"""N: how many leading inputs carry the class."""
NOISE_VARIANCE = 0.2
MAX_ERROR = 0.2
"""A sequence is classified right if the absolute error at its end is below 0.2."""


def close_at_end(output: Tensor, batch: Batch) -> Tensor:
    """(B,) bool: |output - target| < 0.2 at the sequence end."""
    return ((output - batch.y).abs() < MAX_ERROR).all(dim=-1)


@dataclass(frozen=True)
class Latching(LengthTask):
    """Latching with length T .. T + T/10.

    Encoding: one real input; the first N = 3 steps are +1.0 (class 1) or -1.0 (class 0),
    every later step ~ N(0, 0.2) (variance 0.2). Target at the end: 1.0 or 0.0 (regression).
    Success: |error| < 0.2 for every held-out sequence. The 1997 paper (task 3, after Bengio
    et al. 1994, whose targets are +-0.8) reports 452k sequences at T = 1000, N = 3.
    Baseline: always 0.5, MSE 0.25.
    """

    name: ClassVar[str] = "latching"
    shortest: ClassVar[int | None] = INFORMATIVE + 1
    input_size: ClassVar[int] = 1
    objective: ClassVar[Objective] = Objective(
        "regression", 1, baseline=0.25, baseline_note="always predict 0.5", correct=close_at_end
    )

    def generate(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype) -> Batch:
        lengths = random_lengths(batch, self.T, self.max_length, generator)  # (B,)
        L = int(lengths.max())
        label = torch.randint(0, 2, (batch,), generator=generator)  # (B,) 1 or 0
        noise = math.sqrt(NOISE_VARIANCE) * torch.randn(L, batch, generator=generator, dtype=dtype)
        noise[:INFORMATIVE] = (2.0 * label - 1.0).to(dtype)  # (N, B) +-1
        x = pad_after(noise.unsqueeze(2), lengths)  # (L, B, 1)
        return Batch(x, label.to(dtype).unsqueeze(1), lengths)
