"""torch.autograd.Functions whose backward is the hand-derived BPTT of `rnn.py` / `lstm.py`.

One call runs one layer in one direction over x (T, B, I), already in processing order
(the layer flips it for the reverse direction). With `packing` (a PackedSequence input,
`packing.py`) x is padded in sorted order, step t runs rows :batch_sizes[t], and h_n (c_n)
is each row's state at its own last step. With `traces` a list, the call appends a `Trace`
of its per-step states, and its backward fills in dL/dh_t (and dL/dc_t).
Backward is first order only (no double backward).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from vanishing.nn import kernel, lstm, rnn
from vanishing.nn.activations import nonlinearity as lookup_nonlinearity
from vanishing.nn.packing import Packing, final_state
from vanishing.nn.trace import lstm_trace, rnn_trace, time_order


def _impl(x: Tensor, reference: Any) -> Any:
    """The compiled kernel for CPU float32/float64 when it is available, else the reference."""
    return kernel if kernel.supports(x) else reference


def _bias(b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor | None:
    return None if b_ih is None else b_ih + b_hh


def _batch_sizes(packing: Packing | None) -> Tensor | None:
    return None if packing is None else packing.batch_sizes


def _lengths(packing: Packing | None) -> Tensor | None:
    return None if packing is None else packing.lengths


class RNNFunction(torch.autograd.Function):
    """(x, h0, W_ih, W_hh, b_ih, b_hh) -> (output (T, B, H), h_n (B, H))."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        h0: Tensor,
        W_ih: Tensor,
        W_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        nonlinearity: str,
        traces: list | None,
        layer: int,
        direction: int,
        packing: Packing | None = None,
    ) -> tuple[Tensor, Tensor]:
        ctx.impl = _impl(x, rnn)
        hs, cache = ctx.impl.rnn_forward(
            x, h0, W_ih, W_hh, _bias(b_ih, b_hh), nonlinearity, _batch_sizes(packing)
        )
        ctx.cache, ctx.trace, ctx.has_bias, ctx.packing = cache, None, b_ih is not None, packing
        ctx.save_for_backward(x, W_ih, W_hh)  # only for autograd's in-place modification check
        if traces is not None:
            mode = lookup_nonlinearity(nonlinearity).mode
            ctx.trace = rnn_trace(layer, direction, mode, hs, packing)
            traces.append(ctx.trace)
        return hs[1:], final_state(hs, _lengths(packing))

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dout: Tensor, dh_n: Tensor) -> tuple[Tensor | None, ...]:
        ctx.saved_tensors  # noqa: B018 - raises if x or a weight was modified in place since
        dx, dh0, dW_ih, dW_hh, db, dh = ctx.impl.rnn_backward(
            dout, dh_n, ctx.cache, need_dx=ctx.needs_input_grad[0]
        )
        if ctx.trace is not None:
            ctx.trace.dh = time_order(dh, ctx.trace.direction, ctx.packing)
        db_ih, db_hh = (db, db) if ctx.has_bias else (None, None)
        return dx, dh0, dW_ih, dW_hh, db_ih, db_hh, None, None, None, None, None


class LSTMFunction(torch.autograd.Function):
    """(x, h0, c0, W_ih, W_hh, b_ih, b_hh) -> (output (T, B, H), h_n, c_n (B, H))."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        h0: Tensor,
        c0: Tensor,
        W_ih: Tensor,
        W_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        traces: list | None,
        layer: int,
        direction: int,
        packing: Packing | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        ctx.impl = _impl(x, lstm)
        hs, cs, cache = ctx.impl.lstm_forward(
            x, h0, c0, W_ih, W_hh, _bias(b_ih, b_hh), _batch_sizes(packing)
        )
        ctx.cache, ctx.trace, ctx.has_bias, ctx.packing = cache, None, b_ih is not None, packing
        ctx.save_for_backward(x, W_ih, W_hh)  # only for autograd's in-place modification check
        if traces is not None:
            ctx.trace = lstm_trace(layer, direction, hs, cs, cache.gates, packing)
            traces.append(ctx.trace)
        lengths = _lengths(packing)
        return hs[1:], final_state(hs, lengths), final_state(cs, lengths)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dout: Tensor, dh_n: Tensor, dc_n: Tensor) -> tuple[Tensor | None, ...]:
        ctx.saved_tensors  # noqa: B018 - raises if x or a weight was modified in place since
        dx, dh0, dc0, dW_ih, dW_hh, db, dh, dc = ctx.impl.lstm_backward(
            dout, dh_n, dc_n, ctx.cache, need_dx=ctx.needs_input_grad[0]
        )
        if ctx.trace is not None:
            ctx.trace.dh = time_order(dh, ctx.trace.direction, ctx.packing)
            ctx.trace.dc = time_order(dc, ctx.trace.direction, ctx.packing)
        db_ih, db_hh = (db, db) if ctx.has_bias else (None, None)
        return dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, None, None, None, None
