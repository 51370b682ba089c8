"""The optimizers a run can use: the article's plain SGD, SGD with momentum, Adam."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def make_optimizer(
    name: str, parameters: Iterable[Tensor], lr: float, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """'sgd': W <- W - lr dE/dW; 'momentum': torch.optim.SGD with momentum; 'adam': Adam."""
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum)
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    raise ValueError(f"optimizer must be one of sgd, momentum, adam, got {name!r}")
