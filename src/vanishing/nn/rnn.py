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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vanishing.nn.activations import activation_, activation_grad
from vanishing.nn.projection import project_input, weight_gradients


@dataclass
class RNNCache:
    """What backward needs from forward."""

    x: Tensor  # (T, B, I) input
    hs: Tensor  # (T+1, B, H) h_0 .. h_T
    W_ih: Tensor  # (H, I)
    W_hh: Tensor  # (H, H)
    nonlinearity: str


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


def rnn_buffers(x: Tensor, h0: Tensor, W_ih: Tensor, b: Tensor | None) -> Tensor:
    """hs (T+1, B, H): h0 at index 0, then W_in x_t + b for every step, which the time loop
    overwrites with h_t (shared with the compiled kernel)."""
    T, B, _ = x.shape
    H = h0.shape[1]
    hs = torch.empty(T + 1, B, H, dtype=x.dtype, device=x.device)  # (T+1, B, H)
    hs[0] = h0
    project_input(x, W_ih, b, out=hs[1:].view(T * B, H))  # W_in x_t + b, all steps
    return hs


def rnn_forward(
    x: Tensor, h0: Tensor, W_ih: Tensor, W_hh: Tensor, b: Tensor | None, nonlinearity: str
) -> tuple[Tensor, RNNCache]:
    """Run the layer over x (T, B, I) from h0 (B, H); returns (hs (T+1, B, H), cache).

    hs[0] is h0, hs[1:] the output sequence, hs[-1] the final state.
    """
    hs = rnn_buffers(x, h0, W_ih, b)  # (T+1, B, H)
    T = x.shape[0]
    W_hhT = W_hh.t()  # (H, H)
    steps = hs.unbind(0)  # T+1 views (B, H)
    for t in range(1, T + 1):
        rnn_step_forward(steps[t], steps[t - 1], W_hhT, nonlinearity)
    return hs, RNNCache(x, hs, W_ih, W_hh, nonlinearity)


def rnn_backward(
    dout: Tensor, dh_n: Tensor, cache: RNNCache, need_dx: bool = True
) -> tuple[Tensor | None, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients from dout = dL/d(output) (T, B, H) and dh_n = dL/dh_T (B, H).

    Returns (dx (T, B, I) or None, dh0 (B, H), dW_ih (H, I), dW_hh (H, H), db (H,),
    dh (T, B, H)), where dh[t] = dL/dh_t counts every path from h_t to the loss.
    """
    x, hs, W_ih, W_hh = cache.x, cache.hs, cache.W_ih, cache.W_hh
    T = x.shape[0]
    dact = activation_grad(hs[1:], cache.nonlinearity)  # (T, B, H) act'(z_t), all steps at once
    dh = torch.empty_like(dact)  # (T, B, H) dL/dh_t
    dz = torch.empty_like(dact)  # (T, B, H) dL/dz_t
    dout_s, dact_s, dh_s, dz_s = dout.unbind(0), dact.unbind(0), dh.unbind(0), dz.unbind(0)
    dh_next = dh_n  # (B, H)
    for t in reversed(range(T)):
        dh_next = rnn_step_backward(dout_s[t], dh_next, dact_s[t], W_hh, dh_s[t], dz_s[t])
    dx, dW_ih, dW_hh, db = weight_gradients(dz, x, hs, W_ih, need_dx)
    return dx, dh_next, dW_ih, dW_hh, db, dh
