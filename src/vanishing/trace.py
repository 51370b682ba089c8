"""Per-step states and gradients of one layer and direction: what fused layers cannot give.

Turn recording on with `layer.record = True` (or the `record(model)` context manager); each
forward then leaves one `Trace` per layer and direction in `layer.traces`, and the backward
through that forward fills in its gradients. Every tensor is in time order t = 1 .. T with
shape (T, B, H), for the reverse direction too; an unbatched input gives B = 1. The tensors
are views of the layer's own buffers: read them, do not modify them in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from torch import Tensor, nn


@dataclass
class Trace:
    """One layer and direction of one forward call (and of the backward through it).

    h, c: the states h_t, c_t (c is None for the RNN); i, f, g, o: the LSTM's gate
    activations (None for the RNN); dh, dc: dL/dh_t and dL/dc_t over every path from the
    state to the loss, None until backward has run. h0, c0 (B, H): the initial states.
    """

    layer: int
    direction: int  # 0 forward in time, 1 reverse
    h: Tensor
    h0: Tensor
    c: Tensor | None = None
    c0: Tensor | None = None
    i: Tensor | None = None
    f: Tensor | None = None
    g: Tensor | None = None
    o: Tensor | None = None
    dh: Tensor | None = None
    dc: Tensor | None = None

    @property
    def name(self) -> str:
        """PyTorch's suffix for this layer and direction, e.g. 'l0' or 'l1_reverse'."""
        return f"l{self.layer}" + ("_reverse" if self.direction else "")


def in_time_order(x: Tensor, direction: int) -> Tensor:
    """A (T, ...) tensor in processing order, put back in time order."""
    return x.flip(0) if direction else x


def lstm_trace(layer: int, direction: int, hs: Tensor, cs: Tensor, gates: Tensor) -> Trace:
    """A Trace from lstm_forward's hs, cs (T+1, B, H) and gates (T, B, 4H)."""
    i, f, g, o = (in_time_order(a, direction) for a in gates.chunk(4, 2))
    h, c = in_time_order(hs[1:], direction), in_time_order(cs[1:], direction)
    return Trace(layer, direction, h=h, h0=hs[0], c=c, c0=cs[0], i=i, f=f, g=g, o=o)


def rnn_trace(layer: int, direction: int, hs: Tensor) -> Trace:
    """A Trace from rnn_forward's hs (T+1, B, H)."""
    return Trace(layer, direction, h=in_time_order(hs[1:], direction), h0=hs[0])


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
    from vanishing.layers import RecurrentBase

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
