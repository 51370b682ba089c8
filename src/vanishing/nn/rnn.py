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

Every operation is a plain differentiable torch op, so autograd can differentiate the
backward itself (double backward, `functions.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vanishing.nn.activations import activation, activation_grad
from vanishing.nn.packing import active_rows, zero_padded
from vanishing.nn.projection import ALL_GRADIENTS, Needed, project_input, weight_gradients


@dataclass
class RNNCache:
    """What backward needs from forward."""

    x: Tensor  # (T, B, I) input
    hs: Tensor  # (T+1, B, H) h_0 .. h_T
    W_ih: Tensor  # (H, I)
    W_hh: Tensor  # (H, H)
    nonlinearity: str
    batch_sizes: Tensor | None  # (T,) rows running at each step; None: all B


def rnn_step_forward(z_t: Tensor, h_prev: Tensor, W_hh: Tensor, nonlinearity: str) -> Tensor:
    """h_t (n, H) = act(z_t + h_{t-1} W_rec^T) for n rows; z_t (n, H) = W_in x_t + b."""
    return activation(torch.addmm(z_t, h_prev, W_hh.t()), nonlinearity)  # (n, H)


def rnn_step_backward(
    dout_t: Tensor, dh_next: Tensor, dact_t: Tensor, W_hh: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """One reverse step of n rows; dact_t = act'(z_t) (n, H), W_hh = W_rec (H, H).

    Returns dh_t, dz_t and dh_next for step t-1, each (n, H).
    """
    dh = dout_t + dh_next  # (n, H) dL/dh_t
    dz = dh * dact_t  # (n, H) dL/dz_t
    return dh, dz, dz @ W_hh  # ..., dL/dh_{t-1} through the recurrence


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
    T, B, _ = x.shape
    z = project_input(x, W_ih, b).view(T, B, W_ih.shape[0])  # (T, B, H) W_in x_t + b
    h, hs = h0, [h0]  # (B, H)
    for t, n in enumerate(active_rows(batch_sizes, T, B)):
        h = zero_padded(rnn_step_forward(z[t, :n], h[:n], W_hh, nonlinearity), B)  # (B, H)
        hs.append(h)
    hs_ = torch.stack(hs)  # (T+1, B, H)
    return hs_, RNNCache(x, hs_, W_ih, W_hh, nonlinearity, batch_sizes)


def rnn_backward(
    dout: Tensor, dh_n: Tensor, cache: RNNCache, needed: Needed = ALL_GRADIENTS
) -> tuple[Tensor | None, Tensor, Tensor | None, Tensor | None, Tensor | None, Tensor]:
    """Gradients from dout = dL/d(output) (T, B, H) and dh_n = dL/dh_T (B, H).

    Returns (dx (T, B, I), dh0 (B, H), dW_ih (H, I), dW_hh (H, H), db (H,), dh (T, B, H)),
    where dh[t] = dL/dh_t counts every path from h_t to the loss; dx and the weight
    gradients are None where `needed` says so.
    """
    x, hs, W_hh = cache.x, cache.hs, cache.W_hh
    T, B, _ = x.shape
    dact = activation_grad(hs[1:], cache.nonlinearity)  # (T, B, H) act'(z_t), all steps at once
    dh, dz = [None] * T, [None] * T  # per step (B, H)
    dh_next, m = dh_n[:0], 0  # (m, H): the rows running after step t
    rows = active_rows(cache.batch_sizes, T, B)
    for t in reversed(range(T)):
        n = rows[t]
        if n > m:  # the sequences whose last step is t join, with their dL/dh_n
            dh_next, m = torch.cat((dh_next, dh_n[m:n])), n  # (n, H)
        dh_t, dz_t, dh_next = rnn_step_backward(dout[t, :n], dh_next, dact[t, :n], W_hh)
        dh[t], dz[t] = zero_padded(dh_t, B), zero_padded(dz_t, B)
    dh_, dz_ = torch.stack(dh), torch.stack(dz)  # (T, B, H) each
    dx, dW_ih, dW_hh, db = weight_gradients(dz_, x, hs, cache.W_ih, needed)
    return dx, dh_next, dW_ih, dW_hh, db, dh_
