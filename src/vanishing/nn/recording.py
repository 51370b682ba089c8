"""`record(model)`: per-step states and gradients of every vanishing layer in a model.

Inside the block every vanishing.RNN / vanishing.LSTM of the model records; the `Recording`
gives each layer's traces (`trace.py`) by its name in model.named_modules(). The traces live
in the Recording, not on the layers: when the block ends the layers forget it, and
deepcopy / pickle / state_dict of a layer never carry a recording.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from vanishing.nn.layers import RecurrentBase
from vanishing.nn.trace import Trace


class Recording:
    """What `record` collected: each recurrent layer's traces of its last forward call inside
    the block, by the layer's name in model.named_modules(). The recording owns them: the
    layers keep nothing once the block has ended."""

    def __init__(self, layers: dict[str, nn.Module]) -> None:
        self.layers = layers
        self._traces: dict[str, list[Trace]] = {name: [] for name in layers}
        self._names = {id(layer): name for name, layer in layers.items()}

    def __getitem__(self, name: str) -> list[Trace]:
        if name not in self._traces:
            raise KeyError(
                f"no recorded layer named {name!r}; the recorded layers are "
                f"{', '.join(repr(n) for n in self._traces)}"
            )
        return self._traces[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._traces)

    def items(self) -> list[tuple[str, list[Trace]]]:
        return list(self._traces.items())

    def start(self) -> Recording:
        """Begin recording every layer's forward calls (what entering `record` does)."""
        for layer in self.layers.values():
            if self not in layer._recordings:
                layer._recordings.append(self)
        return self

    def stop(self) -> None:
        """Stop recording; the traces kept so far stay here (what leaving `record` does)."""
        for layer in self.layers.values():
            if self in layer._recordings:
                layer._recordings.remove(self)

    def _keep(self, layer: nn.Module, traces: list[Trace]) -> None:
        """The traces of layer's latest forward call (called by the layer)."""
        self._traces[self._names[id(layer)]] = traces

    def _traces_of(self, layer: nn.Module) -> list[Trace]:
        return self._traces[self._names[id(layer)]]


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
    recording = Recording(layers).start()
    try:
        yield recording
    finally:
        recording.stop()
