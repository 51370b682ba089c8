"""The article's simple RNN: forward and hand-derived backpropagation through time.

One layer, one direction, axes (T, B, feature) throughout. The state is c_t in the article
and h_t in PyTorch; W_rec = weight_hh, W_in = weight_ih, b = bias_ih + bias_hh.

Forward, for t = 1 .. T:

    z_t = W_in x_t + b + W_rec h_{t-1}               pre-activation
    h_t = act(z_t)                                    act: sigmoid (the article), tanh, relu

Backward (article eq. 2: dh_t/dh_{t-1} = diag(act'(z_t)) W_rec), for t = T .. 1:

    dh_t  = dout_t + dh_next                          all the loss's gradient reaching h_t
    dz_t  = dh_t * act'(z_t)
    dh_next = dz_t @ W_rec                            becomes dh_{t-1}'s recurrent part

act and act'(z_t) (written through the output h_t) come from `activations.NONLINEARITIES`.
The weight gradients are one GEMM over all steps at the end:
dW_rec = sum_t dz_t^T h_{t-1}, dW_in = sum_t dz_t^T x_t, db = sum_t dz_t, dx_t = dz_t @ W_in.

Variable lengths (`packing.py`): with batch_sizes (T,), the batch is sorted by decreasing
length and step t runs on its first n_t = batch_sizes[t] rows only, in both loops:

    z_t[:n_t] = W_in x_t[:n_t] + b + W_rec h_{t-1}[:n_t]        (n_t, H)
    dh_next[:n_t] = dz_t[:n_t] @ W_rec                          (n_t, H)

Rows n_t .. B-1 of h_t, dh_t, dz_t are zero (ended sequences). Going back, the batch grows:
at step t the rows n_{t+1} .. n_t-1 (the sequences whose last step is t) join dh_next with
their dL/dh_n, where their final state was read. Zero dz rows keep the all-steps GEMMs exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vanishing.nn.activations import activation_, activation_grad
from vanishing.nn.packing import active_rows, running_steps, zero_ended
from vanishing.nn.projection import project_input, weight_gradients


@dataclass
class RNNCache:
    """What backward needs from forward."""

    x: Tensor  # (T, B, I) input
    hs: Tensor  # (T+1, B, H) h_0 .. h_T
    W_ih: Tensor  # (H, I)
    W_hh: Tensor  # (H, H)
    nonlinearity: str
    batch_sizes: Tensor | None  # (T,) rows running at each step; None: all B


def rnn_step_forward(z_t: Tensor, h_prev: Tensor, W_hhT: Tensor, nonlinearity: str) -> Tensor:
    """h_t = act(z_t + h_{t-1} W_rec^T), computed in place in z_t.

    z_t (B, H) holds W_in x_t + b on entry and h_t on exit; W_hhT is W_rec^T (H, H).
    """
    z_t.addmm_(h_prev, W_hhT)  # (B, H) pre-activation z_t
    return activation_(z_t, nonlinearity)  # (B, H) h_t


def rnn_step_backward(
    dout_t: Tensor, dh_next: Tensor, dact_t: Tensor, W_hh: Tensor, dh_t: Tensor, dz_t: Tensor
) -> Tensor:
    """One reverse step; writes dh_t and dz_t (B, H) and returns dh_next for step t-1.

    dact_t = act'(z_t) (B, H); W_hh = W_rec (H, H).
    """
    torch.add(dout_t, dh_next, out=dh_t)  # (B, H) dL/dh_t
    torch.mul(dh_t, dact_t, out=dz_t)  # (B, H) dL/dz_t
    return dz_t @ W_hh  # (B, H) dL/dh_{t-1} through the recurrence


def rnn_buffers(
    x: Tensor, h0: Tensor, W_ih: Tensor, b: Tensor | None, batch_sizes: Tensor | None = None
) -> Tensor:
    """hs (T+1, B, H): h0 at index 0, then W_in x_t + b for every step, which the time loop
    overwrites with h_t; zero for the steps of ended sequences (shared with the kernel)."""
    T, B, _ = x.shape
    H = h0.shape[1]
    hs = torch.empty(T + 1, B, H, dtype=x.dtype, device=x.device)  # (T+1, B, H)
    hs[0] = h0
    project_input(x, W_ih, b, out=hs[1:].view(T * B, H))  # W_in x_t + b, all steps
    zero_ended(hs[1:], batch_sizes)
    return hs


def rnn_forward(
    x: Tensor,
    h0: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b: Tensor | None,
    nonlinearity: str,
    batch_sizes: Tensor | None = None,
) -> tuple[Tensor, RNNCache]:
    """Run the layer over x (T, B, I) from h0 (B, H); returns (hs (T+1, B, H), cache).

    hs[0] is h0, hs[1:] the output sequence, hs[-1] the final state. With batch_sizes (T,)
    step t runs rows :batch_sizes[t] only; hs is zero beyond each length (`final_state`).
    """
    hs = rnn_buffers(x, h0, W_ih, b, batch_sizes)  # (T+1, B, H)
    W_hhT = W_hh.t()  # (H, H)
    states = hs.unbind(0)  # T+1 views (B, H)
    h_prev_s = running_steps(states[:-1], batch_sizes)  # T views (n_t, H): h_{t-1}
    z_s = running_steps(states[1:], batch_sizes)  # T views (n_t, H): W_in x_t + b, then h_t
    for z_t, h_prev in zip(z_s, h_prev_s, strict=True):
        rnn_step_forward(z_t, h_prev, W_hhT, nonlinearity)
    return hs, RNNCache(x, hs, W_ih, W_hh, nonlinearity, batch_sizes)


def rnn_backward(
    dout: Tensor, dh_n: Tensor, cache: RNNCache, need_dx: bool = True
) -> tuple[Tensor | None, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients from dout = dL/d(output) (T, B, H) and dh_n = dL/dh_T (B, H).

    Returns (dx (T, B, I) or None, dh0 (B, H), dW_ih (H, I), dW_hh (H, H), db (H,),
    dh (T, B, H)), where dh[t] = dL/dh_t counts every path from h_t to the loss.
    """
    x, hs, W_ih, W_hh = cache.x, cache.hs, cache.W_ih, cache.W_hh
    T, B, _ = x.shape
    dact = activation_grad(hs[1:], cache.nonlinearity)  # (T, B, H) act'(z_t), all steps at once
    new = torch.empty_like if cache.batch_sizes is None else torch.zeros_like
    dh = new(dact)  # (T, B, H) dL/dh_t, zero beyond each length
    dz = new(dact)  # (T, B, H) dL/dz_t, zero beyond each length
    rows = active_rows(cache.batch_sizes, T, B)
    steps = zip(  # T views each, (n_t, H): the running rows of step t
        rows,
        *(running_steps(a.unbind(0), cache.batch_sizes) for a in (dout, dact, dh, dz)),
        strict=True,
    )
    dh_next, m = dh_n[:0], 0  # (m, H): the rows running after step t
    for n, dout_t, dact_t, dh_t, dz_t in reversed(list(steps)):
        if n > m:  # the sequences whose last step is t join, with their dL/dh_n
            dh_next, m = torch.cat((dh_next, dh_n[m:n])), n  # (n, H)
        dh_next = rnn_step_backward(dout_t, dh_next, dact_t, W_hh, dh_t, dz_t)
    dx, dW_ih, dW_hh, db = weight_gradients(dz, x, hs, W_ih, need_dx)
    return dx, dh_next, dW_ih, dW_hh, db, dh
