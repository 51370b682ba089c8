"""Per-step states and gradients of one layer and direction: what fused layers cannot give.

Turn recording on with `layer.record = True` (or `vanishing.record(model)`, `recording.py`);
each forward then leaves one `Trace` per layer and direction in `layer.traces`, and the
backward through that forward fills in its gradients. Every tensor is in time order
t = 1 .. T with shape (T, B, H), for the reverse direction too; an unbatched input gives
B = 1. The tensors are views of the layer's own buffers: read them, do not modify them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import Tensor

from vanishing.nn.naming import flip_time, suffix


@dataclass
class Trace:
    """One layer and direction of one forward call (and of the backward through it).

    mode: torch.nn's mode string of the layer that made it ('LSTM', 'RNN_TANH', ...).
    h, c: the states h_t, c_t (c is None for the RNN); i, f, g, o: the LSTM's gate
    activations (None for the RNN); dh, dc: dL/dh_t and dL/dc_t over every path from the
    state to the loss, None until backward has run. h0, c0 (B, H): the initial states.
    """

    layer: int
    direction: int  # 0 forward in time, 1 reverse
    mode: str
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
        return suffix(self.layer, self.direction)[1:]

    def select(self, batch: slice) -> Trace:
        """The trace of the sequences `batch` (a slice of the batch axis) only."""
        changes = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):  # h0, c0 (B, H); the rest (T, B, H)
                changes[f.name] = value[batch] if value.dim() == 2 else value[:, batch]
        return dataclasses.replace(self, **changes)


def lstm_trace(layer: int, direction: int, hs: Tensor, cs: Tensor, gates: Tensor) -> Trace:
    """A Trace from lstm_forward's hs, cs (T+1, B, H) and gates (T, B, 4H), processing order."""
    i, f, g, o = (flip_time(a, direction) for a in gates.chunk(4, 2))
    h, c = flip_time(hs[1:], direction), flip_time(cs[1:], direction)
    return Trace(layer, direction, "LSTM", h=h, h0=hs[0], c=c, c0=cs[0], i=i, f=f, g=g, o=o)


def rnn_trace(layer: int, direction: int, mode: str, hs: Tensor) -> Trace:
    """A Trace from rnn_forward's hs (T+1, B, H), processing order."""
    return Trace(layer, direction, mode, h=flip_time(hs[1:], direction), h0=hs[0])
