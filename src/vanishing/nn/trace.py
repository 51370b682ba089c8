"""Per-step states and gradients of one layer and direction: what fused layers cannot give.

`vanishing.record(model)` (`recording.py`) keeps, for each forward inside its block, one
`Trace` per layer and direction in the `Recording` it returns; `layer.record = True` keeps the
last forward's traces on the layer itself, in `layer.traces`. The backward through that
forward fills in the gradients. Every tensor is in time order t = 1 .. T with shape
(T, B, H), for the reverse direction too; an unbatched input gives B = 1. The tensors are
views of the layer's own buffers: read them, do not modify them.

A trace knows the weights it was made with (their identity and `_version`, which every
in-place update such as `optimizer.step()` advances): `check_weights(layer)` refuses a layer
whose weights are not those any more.

A PackedSequence input gives a trace of each sequence's own steps: `lengths` (B,) holds
them, every (T, B, H) tensor (dh, dc too) is zero at steps t >= lengths[b], and the batch
axis is in the caller's order (that of the padded batch the PackedSequence was made from),
not the PackedSequence's sorted order; its tensors may then be copies rather than views.
"""

from __future__ import annotations

import copy
import dataclasses
import weakref
from dataclasses import dataclass, field

from torch import Tensor, nn

from vanishing.nn.naming import PARAMETERS, flip_time, suffix
from vanishing.nn.packing import Packing

WEIGHTS = (*PARAMETERS, "weight_hr")
"""The weights of one layer and direction a trace depends on (weight_hr: the LSTM's projection)."""


class StaleTraceError(ValueError):
    """A trace measured against weights other than those it was recorded with."""


@dataclass(frozen=True)
class WeightState:
    """Which tensor each weight was, and its `_version`, when a trace was recorded."""

    refs: tuple[weakref.ref | None, ...]
    versions: tuple[int, ...]

    @staticmethod
    def of(weights: tuple[Tensor | None, ...]) -> WeightState:
        return WeightState(
            tuple(None if w is None else weakref.ref(w) for w in weights),
            tuple(-1 if w is None else w._version for w in weights),
        )

    def matches(self, weights: tuple[Tensor | None, ...]) -> bool:
        if len(weights) != len(self.refs):
            return False
        for ref, version, w in zip(self.refs, self.versions, weights, strict=True):
            if (ref is None) != (w is None):
                return False
            if w is not None and (ref() is not w or w._version != version):
                return False
        return True


@dataclass
class Trace:
    """One layer and direction of one forward call (and of the backward through it).

    mode: torch.nn's mode string of the layer that made it ('LSTM', 'RNN_TANH', ...).
    h, c: the states h_t, c_t (c is None for the RNN); i, f, g, o: the LSTM's gate
    activations (None for the RNN); dh, dc: dL/dh_t and dL/dc_t over every path from the
    state to the loss, None until backward has run. h0, c0 (B, H): the initial states.
    lengths (B,) int64: each sequence's number of steps for a PackedSequence input (the
    tensors are zero beyond it), None for a padded input (every sequence runs all T steps).
    With a projection (LSTM proj_size P > 0): h, h0, dh are the projected states (T, B, P)
    and m (T, B, H) holds the unprojected m_t = o_t tanh(c_t), with h_t = W_hr m_t.
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
    m: Tensor | None = None
    weights: WeightState | None = field(default=None, repr=False, compare=False)

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

    def __getstate__(self) -> dict:
        """A pickled trace (torch.save) leaves its weights' identity behind: it cannot be
        checked against a layer once loaded."""
        return {**vars(self), "weights": None}

    def __deepcopy__(self, memo: dict) -> Trace:
        """A deep copy still knows the weights the original was recorded with."""
        fields = {k: copy.deepcopy(v, memo) for k, v in vars(self).items() if k != "weights"}
        return Trace(**fields, weights=self.weights)

    def check_weights(self, layer: nn.Module) -> None:
        """Raise StaleTraceError unless layer's weights for this trace's layer and direction
        are the very tensors, unchanged, that the trace was recorded with (a trace loaded
        from a file is not checked)."""
        names = [w + suffix(self.layer, self.direction) for w in WEIGHTS]
        current = tuple(getattr(layer, n, None) for n in names)
        if self.weights is None or self.weights.matches(current):
            return
        raise StaleTraceError(
            f"trace {self.name} was recorded with other weights than {type(layer).__name__}'s "
            "current ones (an optimizer step, load_state_dict or an in-place edit since, or "
            "another layer): record again, running the forward and backward inside "
            "vanishing.record(model), and measure that recording"
        )


class Recorder:
    """Makes one layer and direction's Trace during a forward call (`forward`) and fills in
    its gradients during the backward through that call (`backward`)."""

    def __init__(
        self,
        traces: list[Trace],
        layer: int,
        direction: int,
        mode: str,
        weights: tuple[Tensor | None, ...],
        packing: Packing | None = None,
    ) -> None:
        self.traces, self.layer, self.direction, self.mode = traces, layer, direction, mode
        self.weights, self.packing = WeightState.of(weights), packing
        self.trace: Trace | None = None

    def forward(
        self, hs: Tensor, cs: Tensor | None, gates: Tensor | None, ms: Tensor | None
    ) -> None:
        """The states of the call, processing order: hs (T+1, B, P), cs (T+1, B, H),
        gates (T, B, 4H), ms (T, B, H) (the LSTM's; None for the RNN, ms None without a
        projection)."""
        packing = self.packing
        if cs is None:
            trace = rnn_trace(self.layer, self.direction, self.mode, hs.detach(), packing)
        else:
            trace = lstm_trace(self.layer, self.direction, hs.detach(), cs, gates, packing)
            if ms is not None:
                trace.m = time_order(ms, self.direction, packing)
        trace.weights = self.weights
        self.trace = trace
        self.traces.append(trace)

    def backward(self, dh: Tensor, dc: Tensor | None) -> None:
        """dL/dh_t (T, B, P) and dL/dc_t (T, B, H) (None for the RNN), processing order."""
        if self.trace is None:
            return
        self.trace.dh = time_order(dh.detach(), self.direction, self.packing)
        if dc is not None:
            self.trace.dc = time_order(dc.detach(), self.direction, self.packing)


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
