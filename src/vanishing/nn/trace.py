"""Per-step states and gradients of one layer and direction: what fused layers cannot give.

Turn recording on with `layer.record = True` (or `vanishing.record(model)`, `recording.py`);
each forward then leaves one `Trace` per layer and direction in `layer.traces`, and the
backward through that forward fills in its gradients. Every tensor is in time order
t = 1 .. T with shape (T, B, H), for the reverse direction too; an unbatched input gives
B = 1. The tensors are views of the layer's own buffers: read them, do not modify them.

A PackedSequence input gives a trace of each sequence's own steps: `lengths` (B,) holds
them, every (T, B, H) tensor (dh, dc too) is zero at steps t >= lengths[b], and the batch
axis is in the caller's order (that of the padded batch the PackedSequence was made from),
not the PackedSequence's sorted order; its tensors may then be copies rather than views.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import Tensor

from vanishing.nn.naming import flip_time, suffix
from vanishing.nn.packing import Packing


@dataclass
class Trace:
    """One layer and direction of one forward call (and of the backward through it).

    mode: torch.nn's mode string of the layer that made it ('LSTM', 'RNN_TANH', ...).
    h, c: the states h_t, c_t (c is None for the RNN); i, f, g, o: the LSTM's gate
    activations (None for the RNN); dh, dc: dL/dh_t and dL/dc_t over every path from the
    state to the loss, None until backward has run. h0, c0 (B, H): the initial states.
    lengths (B,) int64: each sequence's number of steps for a PackedSequence input (the
    tensors are zero beyond it), None for a padded input (every sequence runs all T steps).
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
    lengths: Tensor | None = None

    @property
    def name(self) -> str:
        """PyTorch's suffix for this layer and direction, e.g. 'l0' or 'l1_reverse'."""
        return suffix(self.layer, self.direction)[1:]

    def select(self, batch: slice) -> Trace:
        """The trace of the sequences `batch` (a slice of the batch axis) only."""
        changes = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):  # lengths (B,); h0, c0 (B, H); the rest (T, B, H)
                changes[f.name] = value[batch] if value.dim() <= 2 else value[:, batch]
        return dataclasses.replace(self, **changes)


def time_order(x: Tensor, direction: int, packing: Packing | None) -> Tensor:
    """x (T, B, *) in processing order (sorted rows if packed) -> time and caller's order."""
    if packing is None:
        return flip_time(x, direction)
    return packing.to_caller(flip_time(x, direction, packing.lengths), dim=1)


def _batch(x: Tensor, packing: Packing | None) -> Tensor:
    """x (B, *) in the sorted order of a packed batch -> the caller's order."""
    return x if packing is None else packing.to_caller(x, dim=0)


def lstm_trace(
    layer: int,
    direction: int,
    hs: Tensor,
    cs: Tensor,
    gates: Tensor,
    packing: Packing | None = None,
) -> Trace:
    """A Trace from lstm_forward's hs, cs (T+1, B, H) and gates (T, B, 4H), processing order."""
    i, f, g, o = (time_order(a, direction, packing) for a in gates.chunk(4, 2))
    h, c = time_order(hs[1:], direction, packing), time_order(cs[1:], direction, packing)
    h0, c0 = _batch(hs[0], packing), _batch(cs[0], packing)
    lengths = None if packing is None else _batch(packing.lengths, packing)
    return Trace(
        layer, direction, "LSTM", h=h, h0=h0, c=c, c0=c0, i=i, f=f, g=g, o=o, lengths=lengths
    )


def rnn_trace(
    layer: int, direction: int, mode: str, hs: Tensor, packing: Packing | None = None
) -> Trace:
    """A Trace from rnn_forward's hs (T+1, B, H), processing order."""
    h = time_order(hs[1:], direction, packing)
    lengths = None if packing is None else _batch(packing.lengths, packing)
    return Trace(layer, direction, mode, h=h, h0=_batch(hs[0], packing), lengths=lengths)
