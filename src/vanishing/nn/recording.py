"""`record(model)`: per-step states and gradients of every vanishing layer in a model.

Inside the block every vanishing.RNN / vanishing.LSTM of the model records; the `Recording`
gives each layer's traces (`trace.py`) by its name in model.named_modules().
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from torch import nn

from vanishing.nn.layers import RecurrentBase
from vanishing.nn.trace import Trace


@dataclass
class Recording:
    """What `record` collected: the traces of each recurrent layer's last forward call."""

    layers: dict[str, nn.Module]

    def __getitem__(self, name: str) -> list[Trace]:
        return self.layers[name].traces

    def __iter__(self) -> Iterator[str]:
        return iter(self.layers)

    def items(self) -> list[tuple[str, list[Trace]]]:
        return [(name, layer.traces) for name, layer in self.layers.items()]


def recordable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every vanishing RNN/LSTM in model, by its name in model.named_modules() ('' for itself)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, RecurrentBase)}


@contextmanager
def record(model: nn.Module) -> Iterator[Recording]:
    """Record per-step states and gradients of every vanishing layer in model.

    >>> with record(model) as rec:
    ...     model(x)[0].sum().backward()
    >>> rec["lstm"][0].dc          # dL/dc_t of layer 0, forward direction: (T, B, H)
    """
    layers = recordable_layers(model)
    if not layers:
        raise ValueError(
            f"record() expected a model containing vanishing.RNN or vanishing.LSTM layers, "
            f"but {type(model).__name__} has none (use vanishing.profile for torch.nn layers)"
        )
    before = {name: layer.record for name, layer in layers.items()}
    for layer in layers.values():
        layer.record = True
    try:
        yield Recording(layers)
    finally:
        for name, layer in layers.items():
            layer.record = before[name]
