"""The noise-free long time lag task (Hochreiter & Schmidhuber 1997, task 2a).

Only two sequences exist, (x, a_1, ..., a_{p-1}, x) and (y, a_1, ..., a_{p-1}, y); the net
predicts the next symbol at every step. All predictions but the last are memoryless; the last
one needs the first symbol, p steps back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from vanishing.tasks.batch import Batch, LengthTask, Objective

MAX_ERROR = 0.25
"""1997: success when the absolute error of every output unit is below 0.25."""


def all_outputs_close(output: Tensor, batch: Batch) -> Tensor:
    """(B,) bool: |softmax(output) - one-hot target| < 0.25 for every unit at every step."""
    probabilities = output.softmax(dim=-1)  # (T, B, C)
    target = F.one_hot(batch.y, output.shape[-1]).to(probabilities.dtype)  # (T, B, C)
    return ((probabilities - target).abs().amax(dim=-1) < MAX_ERROR).all(dim=0)


@dataclass(frozen=True)
class LongLag(LengthTask):
    """1997 task 2a with lag p = T.

    Encoding: p + 1 symbols, one-hot (p + 1 inputs): a_1 .. a_{p-1} are 0 .. p-2, x is p-1,
    y is p. Input: the first symbol (x or y, probability 1/2), then a_1 .. a_{p-1}: p steps.
    Target at step t: the next symbol (class index), the first symbol again at the last step.
    Success: the softmax output is within 0.25 of the one-hot target for every unit and step,
    on both sequences (the paper: max absolute error < 0.25; p = 100 took 5,040 sequences).
    Baseline: the memoryless predictor, right except a coin flip at the last step: mean
    cross-entropy log(2) / p. Memory: x holds p * B * (p + 1) numbers.
    """

    name: ClassVar[str] = "long-lag"
    shortest: ClassVar[int | None] = 2

    @property
    def input_size(self) -> int:
        return self.T + 1

    @property
    def max_length(self) -> int:
        return self.T

    @property
    def objective(self) -> Objective:
        return Objective(
            "classification",
            self.T + 1,
            per_step=True,
            baseline=math.log(2) / self.T,
            baseline_note="memoryless: a coin flip at the last step",
            correct=all_outputs_close,
        )

    def generate(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype) -> Batch:
        p = self.T
        first = p - 1 + torch.randint(0, 2, (batch,), generator=generator)  # (B,) x or y
        middle = torch.arange(p - 1).unsqueeze(1).expand(p - 1, batch)  # (p-1, B) a_1..a_{p-1}
        inputs = torch.cat([first.unsqueeze(0), middle], dim=0)  # (p, B)
        y = torch.cat([middle, first.unsqueeze(0)], dim=0)  # (p, B) next symbols
        x = F.one_hot(inputs, p + 1).to(dtype)  # (p, B, p+1)
        return Batch(x, y, torch.full((batch,), p, dtype=torch.long), per_step=True)
