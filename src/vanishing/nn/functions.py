"""torch.autograd.Functions whose backward is the hand-derived BPTT of `rnn.py` / `lstm.py`.

One call runs one layer in one direction over x (T, B, I), already in processing order
(the layer flips it for the reverse direction). With batch_sizes and lengths (a
PackedSequence input, `packing.py`) x is padded in sorted order, step t runs rows
:batch_sizes[t], and h_n (c_n) is each row's state at its own last step. With a `Recorder`
(`trace.py`), the call keeps a `Trace` of its per-step states, and its backward fills in
dL/dh_t (and dL/dc_t).

The Functions follow torch.func's protocol (a ctx-free `forward`, `setup_context`, `vmap`),
so torch.func.grad / vjp / jacrev and torch.vmap work on them; the kernel's loops are custom
operators with fake implementations (`kernel/`), so torch.compile and torch.export can trace
a call. `forward` returns the states hs, cs and the gates too (not differentiable): they are
what backward needs, saved with `save_for_backward` and so freed when backward has run.

Double backward: when a graph of the gradient is asked for (create_graph=True, gradgradcheck,
torch.func.grad), grad mode is on inside backward; backward then recomputes the forward with
the reference (`rnn.py`, `lstm.py`) and runs its backward, both plain differentiable torch
ops, so autograd can differentiate the hand-derived gradient itself. Otherwise backward runs
where forward ran (kernel or reference), without building a graph. Backward computes only
the gradients autograd will use (ctx.needs_input_grad, narrowed by `_will_use` under
torch.autograd.grad): a replay for dL/dh_t alone skips the weight-gradient GEMMs.

`rnn_layer` and `lstm_layer` are what the layers call: the Functions, or, when nothing needs
a gradient and nothing is recorded (torch.no_grad / inference_mode, no recorder, no
torch.func transform, not compiling), the kernel's forward alone: no autograd node, no cache
kept (`kernel.lstm_inference` for the LSTM).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor

from vanishing.nn import kernel, lstm, rnn
from vanishing.nn.lstm import LSTMCache
from vanishing.nn.packing import final_state
from vanishing.nn.projection import Needed
from vanishing.nn.rnn import RNNCache
from vanishing.nn.trace import Recorder


def _impl(x: Tensor, reference: Any, projection: bool = False) -> Any:
    """The compiled kernel for CPU float32/float64 when it is available, else the reference."""
    return kernel if kernel.supports(x, projection) else reference


def _bias(b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor | None:
    return None if b_ih is None else b_ih + b_hh


def _materialize(grad: Tensor | None, like: Tensor) -> Tensor:
    """An output's gradient, zeros where the loss does not depend on that output."""
    return torch.zeros_like(like) if grad is None else grad


def _will_use(ctx: Any) -> list[bool]:
    """ctx.needs_input_grad, narrowed to the gradients this backward pass will deliver: under
    torch.autograd.grad(outputs, inputs) the engine runs only the paths to `inputs`, so a
    weight that is not among them needs no gradient (torch._C._will_engine_execute_node, a
    private function: where it is missing or cannot tell, the gradient is computed)."""
    needs = list(ctx.needs_input_grad)
    will_execute = getattr(torch._C, "_will_engine_execute_node", None)
    edges = getattr(ctx, "next_functions", None)  # one per tensor input, in order
    if will_execute is None or edges is None or len(edges) != len(ctx.tensor_inputs):
        return needs
    for edge, k in zip(edges, ctx.tensor_inputs, strict=True):
        if needs[k] and edge[0] is not None:
            try:
                needs[k] = bool(will_execute(edge[0]))
            except RuntimeError:  # a leaf asked for by autograd.grad: needed
                pass
    return needs


def _loop_vmap(function: Any, info: Any, in_dims: tuple, *args: Any) -> tuple[Any, Any]:
    """torch.vmap of a Function: one call per index of the mapped axis, outputs stacked.

    (torch.nn.LSTM has no batching rule either: vmap loops over it the same way.)
    """
    recorder = args[-1]
    if recorder is not None:
        raise RuntimeError(
            "recording (vanishing.record, record=True) does not work under torch.vmap; "
            "record outside vmap"
        )
    results = []
    for k in range(info.batch_size):
        sliced = [a if d is None else a.select(d, k) for a, d in zip(args, in_dims, strict=True)]
        results.append(function.apply(*sliced))
    outputs = tuple(
        None if column[0] is None else torch.stack(column) for column in zip(*results, strict=True)
    )
    return outputs, tuple(None if o is None else 0 for o in outputs)


class RNNFunction(torch.autograd.Function):
    """(x, h0, W_ih, W_hh, b_ih, b_hh, nonlinearity, batch_sizes, lengths, recorder)
    -> (hs (T+1, B, H), h_n (B, H)); the layer's output is hs[1:]."""

    @staticmethod
    def forward(
        x: Tensor,
        h0: Tensor,
        W_ih: Tensor,
        W_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        nonlinearity: str,
        batch_sizes: Tensor | None,
        lengths: Tensor | None,
        recorder: Recorder | None,
    ) -> tuple[Tensor, Tensor]:
        impl = _impl(x, rnn)
        hs, _ = impl.rnn_forward(x, h0, W_ih, W_hh, _bias(b_ih, b_hh), nonlinearity, batch_sizes)
        if recorder is not None:
            recorder.forward(hs, None, None, None)
        return hs, final_state(hs, lengths)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        x, h0, W_ih, W_hh, b_ih, b_hh, nonlinearity, batch_sizes, lengths, recorder = inputs
        hs, _ = output
        ctx.save_for_backward(x, h0, W_ih, W_hh, b_ih, b_hh, hs, batch_sizes)
        ctx.nonlinearity, ctx.recorder = nonlinearity, recorder
        ctx.tensor_inputs = [k for k, a in enumerate(inputs) if isinstance(a, Tensor)]
        ctx.kernel = kernel.supports(x)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx: Any, dhs: Tensor | None, dh_n: Tensor | None) -> tuple[Tensor | None, ...]:
        x, h0, W_ih, W_hh, b_ih, b_hh, hs, batch_sizes = ctx.saved_tensors
        dout, dh_n = _materialize(dhs, hs)[1:], _materialize(dh_n, h0)
        x_, _, W_ih_, W_hh_, b_ih_, b_hh_ = _will_use(ctx)[:6]
        needed = Needed(x_, W_ih_, W_hh_, b_ih_ or b_hh_)
        if torch.is_grad_enabled():  # a graph of the gradient: the differentiable reference
            b = _bias(b_ih, b_hh)
            _, cache = rnn.rnn_forward(x, h0, W_ih, W_hh, b, ctx.nonlinearity, batch_sizes)
            grads = rnn.rnn_backward(dout, dh_n, cache, needed)
        else:
            cache = RNNCache(x, hs, W_ih, W_hh, ctx.nonlinearity, batch_sizes)
            grads = (kernel if ctx.kernel else rnn).rnn_backward(dout, dh_n, cache, needed)
        dx, dh0, dW_ih, dW_hh, db, dh = grads
        if ctx.recorder is not None:
            ctx.recorder.backward(dh, None)
        db_ih, db_hh = (db, db) if b_ih is not None else (None, None)
        return dx, dh0, dW_ih, dW_hh, db_ih, db_hh, None, None, None, None

    @staticmethod
    def vmap(info: Any, in_dims: tuple, *args: Any) -> tuple[Any, Any]:
        return _loop_vmap(RNNFunction, info, in_dims, *args)


class LSTMFunction(torch.autograd.Function):
    """(x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr, batch_sizes, lengths, recorder)
    -> (hs (T+1, B, P), h_n (B, P), c_n (B, H), cs (T+1, B, H), gates (T, B, 4H),
    ms (T, B, H) or None); the layer's output is hs[1:]. W_hr (P, H) is the projection of
    an LSTM with proj_size P > 0 (None without; P = H)."""

    @staticmethod
    def forward(
        x: Tensor,
        h0: Tensor,
        c0: Tensor,
        W_ih: Tensor,
        W_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        W_hr: Tensor | None,
        batch_sizes: Tensor | None,
        lengths: Tensor | None,
        recorder: Recorder | None,
    ) -> tuple[Tensor, ...]:
        impl = _impl(x, lstm, W_hr is not None)
        b = _bias(b_ih, b_hh)
        hs, cs, cache = impl.lstm_forward(x, h0, c0, W_ih, W_hh, b, W_hr, batch_sizes)
        if recorder is not None:
            recorder.forward(hs, cs, cache.gates, cache.ms)
        h_n, c_n = final_state(hs, lengths), final_state(cs, lengths)
        return hs, h_n, c_n, cs, cache.gates, cache.ms

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr, batch_sizes, lengths, recorder = inputs
        hs, _, _, cs, gates, ms = output
        ctx.mark_non_differentiable(*(t for t in (cs, gates, ms) if t is not None))
        ctx.save_for_backward(
            x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr, hs, cs, gates, ms, batch_sizes
        )
        ctx.recorder = recorder
        ctx.tensor_inputs = [k for k, a in enumerate(inputs) if isinstance(a, Tensor)]
        ctx.kernel = kernel.supports(x, W_hr is not None)
        ctx.set_materialize_grads(False)  # cs, gates, ms never receive a gradient

    @staticmethod
    def backward(
        ctx: Any, dhs: Tensor | None, dh_n: Tensor | None, dc_n: Tensor | None, *_: Any
    ) -> tuple[Tensor | None, ...]:
        x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr, hs, cs, gates, ms, batch_sizes = ctx.saved_tensors
        dout = _materialize(dhs, hs)[1:]
        dh_n, dc_n = _materialize(dh_n, h0), _materialize(dc_n, c0)
        x_, _, _, W_ih_, W_hh_, b_ih_, b_hh_, W_hr_ = _will_use(ctx)[:8]
        needed = Needed(x_, W_ih_, W_hh_, b_ih_ or b_hh_, W_hr_)
        if torch.is_grad_enabled():  # a graph of the gradient: the differentiable reference
            b = _bias(b_ih, b_hh)
            _, _, cache = lstm.lstm_forward(x, h0, c0, W_ih, W_hh, b, W_hr, batch_sizes)
            grads = lstm.lstm_backward(dout, dh_n, dc_n, cache, needed)
        else:
            cache = LSTMCache(x, hs, cs, gates, ms, W_ih, W_hh, W_hr, batch_sizes)
            impl = kernel if ctx.kernel else lstm
            grads = impl.lstm_backward(dout, dh_n, dc_n, cache, needed)
        dx, dh0, dc0, dW_ih, dW_hh, db, dW_hr, dh, dc = grads
        if ctx.recorder is not None:
            ctx.recorder.backward(dh, dc)
        db_ih, db_hh = (db, db) if b_ih is not None else (None, None)
        return dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, dW_hr, None, None, None

    @staticmethod
    def vmap(info: Any, in_dims: tuple, *args: Any) -> tuple[Any, Any]:
        return _loop_vmap(LSTMFunction, info, in_dims, *args)


def _inference(x: Tensor, recorder: Recorder | None, projection: bool = False) -> bool:
    """True if a call may skip autograd and the cache: no gradient, nothing recorded, no
    torch.func transform or compilation around it, the kernel supports x."""
    return (
        recorder is None
        and not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
        and not torch._C._are_functorch_transforms_active()
        and kernel.supports(x, projection)
    )


def rnn_layer(
    x: Tensor,
    h0: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    nonlinearity: str,
    batch_sizes: Tensor | None,
    lengths: Tensor | None,
    recorder: Recorder | None,
) -> tuple[Tensor, Tensor]:
    """One layer and direction: (output (T, B, H), h_n (B, H)), through RNNFunction or, when
    nothing needs a gradient or a recording, the kernel's forward alone."""
    if _inference(x, recorder):
        b = _bias(b_ih, b_hh)
        hs, _ = kernel.rnn_forward(x, h0, W_ih, W_hh, b, nonlinearity, batch_sizes)
        return hs[1:], final_state(hs, lengths)
    hs, h_n = RNNFunction.apply(
        x, h0, W_ih, W_hh, b_ih, b_hh, nonlinearity, batch_sizes, lengths, recorder
    )
    return hs[1:], h_n


def lstm_layer(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    W_hr: Tensor | None,
    batch_sizes: Tensor | None,
    lengths: Tensor | None,
    recorder: Recorder | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """One layer and direction: (output (T, B, P), h_n (B, P), c_n (B, H)), through
    LSTMFunction or, when nothing needs a gradient or a recording, kernel.lstm_inference."""
    if _inference(x, recorder, W_hr is not None):
        return kernel.lstm_inference(x, h0, c0, W_ih, W_hh, _bias(b_ih, b_hh), batch_sizes)
    hs, h_n, c_n, *_ = LSTMFunction.apply(
        x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr, batch_sizes, lengths, recorder
    )
    return hs[1:], h_n, c_n


# Function.apply binds its arguments to forward's signature on every call (for setup_context);
# inspect.signature takes ~20 us a call unless the signature is cached on the function.
for _function in (RNNFunction, LSTMFunction):
    _function.forward.__signature__ = inspect.signature(_function.forward)
