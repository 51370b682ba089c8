"""The embedded Reber grammar (Cleeremans et al. 1989; Hochreiter & Schmidhuber 1997, task 1).

A string is B, then T or P, then a Reber string (B ... E), then the same T or P again, then
E. The net predicts the next symbol at every step; all predictions are local except the
second-to-last symbol, which must repeat the second symbol across the whole inner string.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from vanishing.tasks.batch import Batch, LengthTask, Objective, pad_after

SYMBOLS = ("B", "T", "P", "S", "X", "V", "E")
B, T_, P, S, X, V, E = range(7)
END = 6
"""The inner grammar's final node (emits E)."""

# The Reber graph: node -> its two (symbol, next node) edges, each taken with probability 1/2.
EDGE_SYMBOL = torch.tensor([[0, 0], [T_, P], [S, X], [T_, V], [X, S], [P, V], [E, E]])
EDGE_NEXT = torch.tensor([[0, 0], [2, 3], [2, 4], [3, 5], [3, 6], [4, 6], [END, END]])

MEAN_PREDICTIONS = 11.0
"""Expected next-symbol predictions per string: 8 symbols in the inner string (on average),
4 around it, minus the final E (computed from the graph; tests check it on samples)."""


def top_set_is_allowed(output: Tensor, batch: Batch) -> Tensor:
    """(B,) bool: at every scored step the most active outputs are exactly the allowed next
    symbols (the 1997 criterion): min over allowed > max over the others."""
    allowed = batch.y > 0  # (T, B, 7)
    lowest_allowed = torch.where(allowed, output, torch.inf).amin(dim=-1)  # (T, B)
    highest_other = torch.where(allowed, -torch.inf, output).amax(dim=-1)  # (T, B)
    right = lowest_allowed > highest_other  # (T, B)
    return (right | ~batch.mask()).all(dim=0)


def reber_strings(batch: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
    """Embedded Reber strings: symbols (L, B) (-1 after the end), allowed next symbols
    (L, B, 7) bool, and each string's symbol count (B,)."""
    node = torch.ones(batch, dtype=torch.long)  # (B,) every inner string starts at node 1
    inner, after = [], []  # inner symbols and the node reached after each
    while bool((node != END).any()):
        choice = torch.randint(0, 2, (batch,), generator=generator)  # (B,)
        active = node != END
        inner.append(torch.where(active, EDGE_SYMBOL[node, choice], -1))  # (B,)
        node = torch.where(active, EDGE_NEXT[node, choice], node)
        after.append(node)
    wrapper = T_ + torch.randint(0, 2, (batch,), generator=generator)  # (B,) T or P
    inner_symbols = torch.stack(inner)  # (M, B)
    m = (inner_symbols >= 0).sum(dim=0)  # (B,) symbols of the inner path
    count = m + 6  # B, T|P, B, path, E, T|P, E
    L = int(count.max())
    columns = torch.arange(batch)
    symbols = torch.full((L, batch), -1, dtype=torch.long)  # (L, B)
    symbols[0], symbols[1], symbols[2] = B, wrapper, B
    symbols[3 : 3 + inner_symbols.shape[0]] = inner_symbols
    symbols[3 + m, columns], symbols[4 + m, columns], symbols[5 + m, columns] = E, wrapper, E
    allowed = torch.zeros(L, batch, len(SYMBOLS), dtype=torch.bool)  # (L, B, 7)
    allowed[0, :, T_] = allowed[0, :, P] = True  # after the first B
    allowed[1, :, B] = True
    allowed[2, :, T_] = allowed[2, :, P] = True  # node 1
    for i, reached in enumerate(after):  # after inner symbol i: node `reached`'s edges
        step = allowed[3 + i]  # (B,  7) view
        live = i < m
        step[live, EDGE_SYMBOL[reached[live], 0]] = True
        step[live, EDGE_SYMBOL[reached[live], 1]] = True
    allowed[3 + m, columns, wrapper] = True  # after the inner E: repeat the second symbol
    allowed[4 + m, columns, E] = True
    return symbols, allowed, count


@dataclass(frozen=True)
class EmbeddedReber(LengthTask):
    """Next-symbol prediction on embedded Reber strings (no length parameter).

    Encoding: one-hot over B, T, P, S, X, V, E (7 inputs); a string of n symbols gives n - 1
    steps (the last symbol is only a target). Target at each step: the grammar's next-symbol
    distribution (uniform over the 1 or 2 allowed symbols), loss the cross-entropy minus its
    entropy (0 for a perfect predictor). Success: at every step of every held-out string the
    most active outputs are exactly the allowed symbols (the paper: 256 training and 256 test
    strings, 100 % of runs after 8,440 sequences; Elman nets never). Here every training
    sequence is a new string. Baseline: the predictor that forgets the second symbol, right
    except a coin flip before the final E: log(2) / 11 per step.
    """

    T: int | None = None
    name: ClassVar[str] = "reber"
    shortest: ClassVar[int | None] = None
    input_size: ClassVar[int] = len(SYMBOLS)
    max_length: ClassVar[int] = 64
    """A bound for chrono initialisation (99.9 % of strings have at most 32 symbols)."""
    objective: ClassVar[Objective] = Objective(
        "classification",
        len(SYMBOLS),
        per_step=True,
        baseline=math.log(2) / MEAN_PREDICTIONS,
        baseline_note="forget the second symbol",
        correct=top_set_is_allowed,
    )

    def __post_init__(self) -> None:
        if self.T is not None:
            raise ValueError(f"{self.name} has no length parameter T (got T = {self.T})")

    def generate(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype) -> Batch:
        symbols, allowed, count = reber_strings(batch, generator)
        lengths = count - 1  # (B,) prediction steps
        L = int(lengths.max())
        inputs = symbols[:L].clamp(min=0)  # (L, B); padded steps are masked
        x = pad_after(F.one_hot(inputs, len(SYMBOLS)).to(dtype), lengths)  # (L, B, 7)
        y = allowed[:L].to(dtype)  # (L, B, 7)
        y = y / y.sum(dim=-1, keepdim=True).clamp(min=1.0)
        return Batch(x, y, lengths, per_step=True)
