"""The monitor's replay of a torch.nn.RNN / LSTM call: its layer's gradients dL/dh_t, dL/dc_t.

torch.nn's fused layers keep neither their states nor the gradient that reaches each step.
On a measured step the monitor keeps the call (input, initial state, the weights of that
moment in a vanishing twin, the generator's state for dropout between stacked layers) and
the gradients that reach its outputs; `Replay.traces` then runs the twin's forward and a
backward of those gradients that computes neither weight gradients nor dx, and returns the
twin's traces: a one-layer, one-direction call on a padded batch straight through the
kernel (`direct_trace`), any other through the recorded twin with frozen weights and an
initial state that needs grad (`model.state_needing_grad`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from vanishing.gradflow.model import state_needing_grad
from vanishing.nn import Trace, kernel, record
from vanishing.nn.naming import is_lstm
from vanishing.nn.projection import Needed
from vanishing.nn.trace import WEIGHTS, Recorder

NO_GRADIENTS = Needed(False, False, False, False, False)  # the replay's backward: states only


def _flat(outputs: tuple) -> list[Tensor]:
    """A recurrent layer's (out, h_n) or (out, (h_n, c_n)) as [out, h_n(, c_n)]; a packed
    out as its data."""
    out, final = outputs
    if isinstance(out, PackedSequence):
        out = out.data
    return [out, *(final if isinstance(final, tuple) else (final,))]


def direct_trace(twin: nn.Module, x: object, hx: object, grads: list) -> Trace | None:
    """The replay of a one-layer, one-direction call on a padded batch, straight through
    the kernel's forward and state-only backward (no layer, no autograd): the Trace the
    recorded replay gives, about 1 ms sooner per measured step at (B, T, H) = (64, 100, 64).
    None where it does not apply (stacked or bidirectional layers, a PackedSequence, an
    input the kernel does not take). x, hx, grads (of out, h_n[, c_n]) as the call had them."""
    if twin.num_layers != 1 or twin.bidirectional or not isinstance(x, Tensor):
        return None
    batched = x.dim() == 3
    x = (x.transpose(0, 1) if twin.batch_first else x) if batched else x.unsqueeze(1)
    if not kernel.supports(x):  # x (T, B, I)
        return None
    T, B, H = x.shape[0], x.shape[1], twin.hidden_size
    lstm = is_lstm(twin)
    states = hx if isinstance(hx, tuple) else (hx, None)  # (h_0, c_0), each maybe None
    zeros = x.new_zeros(B, H)  # (B, H)
    h0, c0 = ((s if batched else s.unsqueeze(1))[0] if s is not None else zeros for s in states)
    dout, dh_n, dc_n = (*grads, None)[:3]
    if dout is None:
        dout = x.new_zeros(T, B, H)
    elif batched:
        dout = dout.transpose(0, 1) if twin.batch_first else dout  # (T, B, H)
    else:
        dout = dout.unsqueeze(1)
    dh_n, dc_n = ((d if batched else d.unsqueeze(1))[0] if d is not None else zeros
                  for d in (dh_n, dc_n))  # fmt: skip
    weights = tuple(getattr(twin, name + "_l0", None) for name in WEIGHTS)  # W_ih, .., W_hr
    W_ih, W_hh, b_ih, b_hh = weights[:4]
    b = None if b_ih is None else b_ih + b_hh
    recorder = Recorder([], 0, 0, twin.mode, weights)
    with torch.no_grad():
        if lstm:
            hs, cs, cache = kernel.lstm_forward(x, h0, c0, W_ih, W_hh, b, None, None)
            recorder.forward(hs, cs, cache.gates, None)
            *_, dh, dc = kernel.lstm_backward(dout, dh_n, dc_n, cache, NO_GRADIENTS)
        else:
            hs, rnn_cache = kernel.rnn_forward(x, h0, W_ih, W_hh, b, twin.nonlinearity, None)
            recorder.forward(hs, None, None, None)
            dh, dc = kernel.rnn_backward(dout, dh_n, rnn_cache, NO_GRADIENTS)[-1], None
        recorder.backward(dh, dc)
    return recorder.trace


class Replay:
    """One torch.nn.RNN / LSTM call kept for replay: input, initial state, a twin holding the
    weights of that moment, and the gradients that reach the outputs in backward."""

    def __init__(
        self, twin: nn.Module, args: tuple, kwargs: dict, outputs: tuple, rng: Tensor | None
    ) -> None:
        self.twin, self.rng = twin, rng  # rng: the generator's state before the call
        x = args[0] if args else kwargs["input"]
        if isinstance(x, PackedSequence):
            data = x.data.detach().clone()
            self.x = PackedSequence(data, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
        else:
            self.x = x.detach().clone()
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        if isinstance(hx, Tensor):
            hx = hx.detach().clone()
        elif hx is not None:
            hx = tuple(h.detach().clone() for h in hx)
        self.hx = hx
        outputs = _flat(outputs)  # out, h_n[, c_n]
        self.grads: list[Tensor | None] = [None] * len(outputs)
        for k, t in enumerate(outputs):
            if t.requires_grad:
                t.register_hook(self._keeper(k))

    def _keeper(self, k: int) -> Any:
        def keep(grad: Tensor) -> None:
            self.grads[k] = grad.detach().clone()

        return keep

    def traces(self) -> list[Trace]:
        """The twin's traces after a recorded forward and a backward of the kept gradients;
        [] if no gradient reached the layer."""
        kept = [k for k, g in enumerate(self.grads) if g is not None]
        if not kept:
            return []
        direct = direct_trace(self.twin, self.x, self.hx, self.grads)
        if direct is not None:
            return [direct]
        twin = self.twin.requires_grad_(False)  # frozen: no weight gradients, nor dx
        hx = state_needing_grad(twin, self.x, self.hx)
        with torch.random.fork_rng(devices=[]), record(twin) as recording:  # RNG restored
            if self.rng is not None:  # the call's dropout masks (drawn as torch.nn draws them)
                torch.set_rng_state(self.rng)
            outputs = _flat(twin(self.x, hx))
            h0 = hx[0] if isinstance(hx, tuple) else hx
            torch.autograd.grad([outputs[k] for k in kept], h0, [self.grads[k] for k in kept])
        return list(recording[""])
