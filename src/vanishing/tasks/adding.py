"""The adding problem and its family (Hochreiter & Schmidhuber 1997, tasks 4 and 5).

Two values in a long sequence of random values are marked; the target at the end depends on
both, so information must be carried over up to T - 1 steps. A network whose gradient
vanishes with the time lag cannot learn it and stays at the trivial baseline.

- `Adding`: the 1997 definition; `Multiplication`: the same with the product;
- `AddingLe` and `adding_problem`: the U[0,1] variant of Le et al. 2015 / Arjovsky et al.
  2016 (one marker in each half, target the sum), which `vanishing demo` uses.
"""

from __future__ import annotations

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

ADDING_BASELINE_MSE = 1.0 / 6.0
"""Test MSE of always predicting 1 = E[target]: Var(u1 + u2) = 2 * 1/12 for u1, u2 ~ U[0,1]."""

ADDING_1997_BASELINE_MSE = (0.9 / 3.0 + 1.0 / 3.0) / 16.0
"""MSE of always predicting 0.5 in the 1997 task: Var(X1 + X2) / 16, Var X1 = 0.9 * 1/3 (X1
is 0 when the first pair is marked, probability 1/10), Var X2 = 1/3: 0.0396."""

MULTIPLICATION_BASELINE_MSE = (0.9 / 9.0 + 0.1 / 3.0) - (0.9 / 4.0 + 0.1 / 2.0) ** 2
"""MSE of always predicting E[X1 X2] = 0.275: E[Y^2] - E[Y]^2 with X1 = 1 w.p. 1/10: 0.0577."""

TOLERANCE = 0.04
"""1997: a sequence is processed correctly if the absolute error at its end is below 0.04."""


def adding_problem(
    batch: int,
    T: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """A batch of the adding problem: x (T, B, 2), y (B, 1).

    x[..., 0] holds values ~ U[0,1]; x[..., 1] is a marker, 1 at exactly two steps (one in
    the first half t < T // 2, one in the second half) and 0 elsewhere. The target y is the
    sum of the two marked values, so E[y] = 1 and predicting 1 gives MSE 1/6.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    if isinstance(T, bool) or not isinstance(T, int) or T < 2:
        raise ValueError(f"T must be an int >= 2 (one marker in each half), got {T!r}")
    half = T // 2
    values = torch.rand(T, batch, generator=generator, dtype=dtype)  # (T, B)
    first = torch.randint(0, half, (batch,), generator=generator)  # (B,) in [0, T//2)
    second = torch.randint(half, T, (batch,), generator=generator)  # (B,) in [T//2, T)
    markers = torch.zeros(T, batch, dtype=dtype)  # (T, B)
    columns = torch.arange(batch)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    x = torch.stack([values, markers], dim=2)  # (T, B, 2)
    y = (values * markers).sum(dim=0, keepdim=True).t()  # (B, 1)
    return x, y


def within_tolerance(output: Tensor, batch: Batch) -> Tensor:
    """(B,) bool: |output - target| < 0.04 at the sequence end (the 1997 criterion)."""
    return ((output - batch.y).abs() < TOLERANCE).all(dim=-1)


def marked_pairs(
    batch: int,
    T: int,
    low: float,
    first_value: float,
    generator: torch.Generator | None,
    dtype: torch.dtype,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The 1997 sequences: x (L, B, 2) padded, X1 (B,), X2 (B,), lengths (B,).

    Length T .. T + T/10. Values ~ U[low, 1]. Markers: 1.0 at one of the first ten pairs (X1)
    and at one of the first T/2 - 1 still unmarked pairs (X2); -1.0 at the first and the last
    pair of each sequence (unless marked); 0 elsewhere. X1 = first_value when the first pair is
    the marked one (1997: 'X1 is set to zero in the rare case where the first pair got marked').
    """
    lengths = random_lengths(batch, T, T + T // 10, generator)  # (B,)
    L = int(lengths.max())
    values = low + (1.0 - low) * torch.rand(L, batch, generator=generator, dtype=dtype)  # (L, B)
    first = torch.randint(0, 10, (batch,), generator=generator)  # (B,) one of the first ten
    r = torch.randint(0, T // 2 - 1, (batch,), generator=generator)  # (B,)
    second = r + (r >= first).long()  # (B,) one of the first T/2 - 1 unmarked pairs
    columns = torch.arange(batch)
    values[0, first == 0] = first_value
    markers = torch.zeros(L, batch, dtype=dtype)  # (L, B)
    markers[0] = -1.0
    markers[lengths - 1, columns] = -1.0
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    x = pad_after(torch.stack([values, markers], dim=2), lengths)  # (L, B, 2)
    return x, values[first, columns], values[second, columns], lengths


@dataclass(frozen=True)
class Adding(LengthTask):
    """The adding problem as Hochreiter & Schmidhuber 1997 define it (their task 4).

    Encoding: pairs (value ~ U[-1, 1], marker), length T .. T + T/10; markers as in
    `marked_pairs` (1.0 at X1 in the first 10 pairs and X2 in the first T/2 - 1, -1.0 at the
    first and last pair). Target at the end: 0.5 + (X1 + X2) / 4, in [0, 1]. Success: a
    sequence is correct if |error| < 0.04; the paper stops when 2000 recent sequences are all
    correct and reports T = 100: 74k, T = 500: 209k, T = 1000: 853k sequences. Here: every
    held-out sequence correct. Baseline: always 0.5, MSE 0.0396 (ADDING_1997_BASELINE_MSE).
    """

    name: ClassVar[str] = "adding"
    shortest: ClassVar[int | None] = 20
    input_size: ClassVar[int] = 2
    objective: ClassVar[Objective] = Objective(
        "regression",
        1,
        baseline=ADDING_1997_BASELINE_MSE,
        baseline_note="always predict 0.5",
        correct=within_tolerance,
    )

    def generate(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype) -> Batch:
        x, x1, x2, lengths = marked_pairs(batch, self.T, -1.0, 0.0, generator, dtype)
        y = (0.5 + (x1 + x2) / 4.0).unsqueeze(1)  # (B, 1)
        return Batch(x, y, lengths)


@dataclass(frozen=True)
class Multiplication(LengthTask):
    """1997 task 5: as `Adding`, with values ~ U[0, 1] and the target X1 * X2.

    X1 = 1.0 when the first pair is the marked one (the product's neutral value, in place of
    the adding task's 0). Success: |error| < 0.04 at the end; the paper stops when at most 140
    of the 2000 most recent sequences are wrong (here: >= 93 % of the held-out set correct)
    and reports test MSE 0.0223 after 482k sequences (T = 100). Baseline: always E[X1 X2] =
    0.275, MSE 0.0577 (MULTIPLICATION_BASELINE_MSE).
    """

    name: ClassVar[str] = "multiplication"
    shortest: ClassVar[int | None] = 20
    input_size: ClassVar[int] = 2
    objective: ClassVar[Objective] = Objective(
        "regression",
        1,
        baseline=MULTIPLICATION_BASELINE_MSE,
        baseline_note="always predict 0.275",
        correct=within_tolerance,
        required=1.0 - 140 / 2000,
    )

    def generate(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype) -> Batch:
        x, x1, x2, lengths = marked_pairs(batch, self.T, 0.0, 1.0, generator, dtype)
        return Batch(x, (x1 * x2).unsqueeze(1), lengths)


@dataclass(frozen=True)
class AddingLe(LengthTask):
    """The U[0, 1] adding problem of Le et al. 2015 and Arjovsky et al. 2016 (`adding_problem`).

    Encoding: pairs (value ~ U[0, 1], marker), length exactly T; one marker in each half.
    Target: the sum of the two marked values. No published success criterion (papers report
    the MSE curve). Baseline: always 1, MSE 1/6.
    """

    name: ClassVar[str] = "adding-le"
    shortest: ClassVar[int | None] = 2
    input_size: ClassVar[int] = 2
    objective: ClassVar[Objective] = Objective(
        "regression", 1, baseline=ADDING_BASELINE_MSE, baseline_note="always predict 1"
    )

    @property
    def max_length(self) -> int:
        return self.T

    def generate(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype) -> Batch:
        x, y = adding_problem(batch, self.T, generator, dtype)
        return Batch(x, y, torch.full((batch,), self.T, dtype=torch.long))
