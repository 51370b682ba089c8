"""Where training batches come from: an endless seeded task stream, or a fixed dataset.

Both give `next_batch()` and save their position as (`state()` JSON, `tensors()`), restored
by `restore(state, tensors)`, so a resumed run draws exactly the batches it would have drawn.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from vanishing.tasks import Batch, Task


class DataSource(Protocol):
    """What the trainer needs from its data."""

    def next_batch(self) -> Batch: ...

    def state(self) -> dict[str, Any]: ...

    def tensors(self) -> dict[str, Tensor]: ...

    def restore(self, state: dict[str, Any], tensors: dict[str, Tensor]) -> None: ...


class TaskStream:
    """Batches of `batch` fresh sequences from a task, drawn from a generator seeded with seed."""

    def __init__(
        self, task: Task, batch: int, seed: int, dtype: torch.dtype = torch.float32
    ) -> None:
        self.task, self.batch, self.dtype = task, batch, dtype
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> Batch:
        return self.task.sample(self.batch, self.generator, self.dtype)

    def state(self) -> dict[str, Any]:
        return {}

    def tensors(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def restore(self, state: dict[str, Any], tensors: dict[str, Tensor]) -> None:
        self.generator.set_state(tensors["generator"])


class TensorData:
    """A fixed dataset, reshuffled every epoch: x (T, N, I) zero-padded, y, lengths (N,).

    y: (N, ...) per sequence, or (T, N, ...) if per_step. Epoch e's order is a permutation
    seeded by (seed, e), so it is the same after a resume; the last batch of an epoch may be
    smaller (an epoch is exactly N sequences). shuffle=False keeps the stored order.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        lengths: Tensor | None = None,
        batch: int = 32,
        seed: int = 0,
        per_step: bool = False,
        shuffle: bool = True,
    ) -> None:
        if x.dim() != 3:
            raise ValueError(f"x must be (T, N, I), got shape {tuple(x.shape)}")
        N = x.shape[1]
        if lengths is None:
            lengths = torch.full((N,), x.shape[0], dtype=torch.long)
        if lengths.shape != (N,) or bool((lengths < 1).any() | (lengths > x.shape[0]).any()):
            raise ValueError(f"lengths must be (N,) = ({N},) with values in 1..{x.shape[0]}")
        n_y = y.shape[1] if per_step else y.shape[0]
        if n_y != N:
            raise ValueError(f"y holds {n_y} sequences, x holds {N}")
        self.data = Batch(x, y, lengths.long(), per_step)
        self.batch, self.seed, self.shuffle = batch, seed, shuffle
        self.epoch, self.position = 0, 0
        self.order = self.permutation(0)

    @property
    def size(self) -> int:
        return self.data.size

    def permutation(self, epoch: int) -> Tensor:
        """(N,) the order of epoch `epoch`."""
        if not self.shuffle:
            return torch.arange(self.size)
        seed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(seed))

    def next_batch(self) -> Batch:
        if self.position >= self.size:
            self.epoch, self.position = self.epoch + 1, 0
            self.order = self.permutation(self.epoch)
        index = self.order[self.position : self.position + self.batch]  # (B,)
        self.position += index.numel()
        return self.data.take(index)

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position}

    def tensors(self) -> dict[str, Tensor]:
        return {}

    def restore(self, state: dict[str, Any], tensors: dict[str, Tensor]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.order = self.permutation(self.epoch)
