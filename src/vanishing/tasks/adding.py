"""Long-lag tasks for recurrent networks; axes (T, B, feature) throughout.

The adding problem (Hochreiter & Schmidhuber 1997, in the U[0,1] variant of Le et al. 2015)
needs information carried over up to T - 1 steps: a network whose gradient vanishes with the
time lag cannot learn it and stays at the baseline MSE of 1/6.
"""

from __future__ import annotations

import torch
from torch import Tensor

ADDING_BASELINE_MSE = 1.0 / 6.0
"""Test MSE of always predicting 1 = E[target]: Var(u1 + u2) = 2 * 1/12 for u1, u2 ~ U[0,1]."""


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
