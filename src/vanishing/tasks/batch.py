"""What every task shares: a padded `Batch` with each sequence's length, and its `Objective`.

Axes are (T, B, feature) throughout. Sequences in one batch may differ in length: x is padded
with zeros after each sequence's own last step and `lengths` keeps every length, so a model
reads a sequence-level output at step lengths[b] - 1 and per-step losses skip padded steps.
For forward-direction layers this is exact (a step's output depends only on earlier steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

KINDS = ("regression", "classification")


@dataclass(frozen=True)
class Batch:
    """x (T, B, I) zero-padded; y the targets; lengths (B,) int64, each in 1..T.

    y: regression (B, O) float, or (T, B, O) if per_step; classification (B,) int64 class
    indices, or per step (T, B) int64 indices or (T, B, C) float probabilities.
    """

    x: Tensor
    y: Tensor
    lengths: Tensor
    per_step: bool = False

    @property
    def size(self) -> int:
        return self.x.shape[1]

    def mask(self) -> Tensor:
        """(T, B) bool: True at the steps each sequence really has (t < lengths[b])."""
        return step_mask(self.lengths, self.x.shape[0])

    def take(self, index: Tensor) -> Batch:
        """The sequences at `index` (B',), trimmed to their longest length."""
        lengths = self.lengths[index]  # (B',)
        T = int(lengths.max())
        y = self.y[:T, index] if self.per_step else self.y[index]
        return Batch(self.x[:T, index], y, lengths, self.per_step)


def step_mask(lengths: Tensor, T: int) -> Tensor:
    """(T, B) bool, True where t < lengths[b]."""
    return torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)  # (T, B)


def random_lengths(batch: int, low: int, high: int, generator: torch.Generator | None) -> Tensor:
    """(B,) int64 lengths uniform in low..high (both included)."""
    return torch.randint(low, high + 1, (batch,), generator=generator)


def pad_after(x: Tensor, lengths: Tensor) -> Tensor:
    """x (T, B, ...) with every step t >= lengths[b] set to zero."""
    mask = step_mask(lengths, x.shape[0])  # (T, B)
    return x * mask.reshape(*mask.shape, *([1] * (x.dim() - 2))).to(x.dtype)


def check_size(name: str, value: object, minimum: int) -> int:
    """An int >= minimum, or a ValueError saying what was expected."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


Correct = Callable[[Tensor, Batch], Tensor]
"""correct(output, batch) -> (B,) bool: which sequences the model got right."""


@dataclass(frozen=True)
class Objective:
    """What the model is trained for and when it has succeeded.

    kind: 'regression' (mean squared error) or 'classification' (cross-entropy; with
    probability targets, minus the targets' entropy, so a perfect predictor scores 0);
    per_step: a target at every step (masked by length) instead of one per sequence;
    outputs: the read-out's width (values, or classes); baseline: the loss of the trivial
    predictor named in `baseline_note`; correct: per-sequence success test (None: no test;
    classification then defaults to argmax right at every scored step); required: the
    fraction of held-out sequences that must be correct for the task to count as solved.
    """

    kind: str
    outputs: int
    per_step: bool = False
    baseline: float = math.nan
    baseline_note: str = ""
    correct: Correct | None = None
    required: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        check_size("outputs", self.outputs, 1)
        if not 0.0 < self.required <= 1.0:
            raise ValueError(f"required must be in (0, 1], got {self.required}")

    @property
    def has_success_test(self) -> bool:
        return self.correct is not None or self.kind == "classification"

    def losses(self, output: Tensor, batch: Batch) -> Tensor:
        """The loss of every scored item: (B,) per sequence, or (N,) per scored step."""
        y = batch.y
        if self.per_step:
            mask = batch.mask()  # (T, B)
            output, y = output[mask], y[mask]  # (N, O), (N, ...)
        if self.kind == "regression":
            return ((output - y) ** 2).mean(dim=-1)
        if y.is_floating_point():  # probabilities: cross-entropy minus entropy (KL)
            entropy = -(y * torch.log(torch.where(y > 0, y, torch.ones_like(y)))).sum(-1)
            return F.cross_entropy(output, y, reduction="none") - entropy
        return F.cross_entropy(output, y, reduction="none")

    def loss(self, output: Tensor, batch: Batch) -> Tensor:
        """The training loss, a mean over scored items (for sequence-level regression,
        exactly torch.mean((output - y) ** 2))."""
        if self.kind == "regression" and not self.per_step:
            return torch.mean((output - batch.y) ** 2)
        return self.losses(output, batch).mean()

    def correct_sequences(self, output: Tensor, batch: Batch) -> Tensor | None:
        """(B,) bool, or None when this objective has no success test."""
        if self.correct is not None:
            return self.correct(output, batch)
        if self.kind != "classification":
            return None
        right = output.argmax(-1) == target_classes(batch.y)  # (B,) or (T, B)
        if not self.per_step:
            return right
        return (right | ~batch.mask()).all(dim=0)


def target_classes(y: Tensor) -> Tensor:
    """Class indices from index targets, or the most probable class of probability targets."""
    return y.argmax(-1) if y.is_floating_point() else y


class Task(Protocol):
    """A seeded generator of batches with its objective (every task module has one or two).

    name: what `--task` calls it; shortest: the shortest T it accepts; T: its length parameter
    (None if it has none); max_length: its longest sequence; input_size: x's last axis.
    """

    name: ClassVar[str]
    shortest: ClassVar[int | None]
    T: int | None
    input_size: int
    max_length: int
    objective: Objective

    def sample(
        self, batch: int, generator: torch.Generator | None = None, dtype: torch.dtype = ...
    ) -> Batch: ...


@dataclass(frozen=True)
class LengthTask:
    """What the tasks share: the length parameter T, checked against the class's `shortest`;
    sequences of T .. T + T/10 steps (`max_length`, unless a task says otherwise); `sample`,
    which checks the batch size and calls the task's `generate`."""

    T: int | None = 100
    name: ClassVar[str] = ""
    shortest: ClassVar[int | None] = 1

    def __post_init__(self) -> None:
        check_size(f"{self.name}: T", self.T, self.shortest)

    @property
    def max_length(self) -> int:
        return self.T + self.T // 10

    def sample(
        self,
        batch: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Batch:
        """A batch of `batch` sequences drawn from generator (torch's global RNG if None)."""
        check_size("batch", batch, 1)
        return self.generate(batch, generator, dtype)

    def generate(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype) -> Batch:
        raise NotImplementedError
