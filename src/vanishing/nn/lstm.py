"""The article's LSTM: forward and hand-derived backpropagation through time.

One layer, one direction, axes (T, B, feature) throughout. Gate order is PyTorch's
[i, f, g, o] along the 4H axis of W_ih (4H, I), W_hh (4H, P) and b = bias_ih + bias_hh;
g_t is the article's candidate c~_t. W_hh's blocks U_i, U_f, U_g, U_o are the article's
U_i, U_f, U_c, U_o.

Forward, for t = 1 .. T (article eq. 5):

    [z_i, z_f, z_g, z_o] = W_ih x_t + b + W_hh h_{t-1}
    i_t = sigma(z_i)   f_t = sigma(z_f)   g_t = tanh(z_g)   o_t = sigma(z_o)
    c_t = f_t * c_{t-1} + i_t * g_t
    m_t = o_t * tanh(c_t)
    h_t = m_t                           (P = H), or with a projection (LSTMP, proj_size P < H):
    h_t = W_hr m_t                      W_hr (P, H): torch.nn.LSTM's weight_hr

Backward, for t = T .. 1, with dc_next, dh_next the gradients reaching c_t, h_t from step t+1:

    dh_t = dout_t + dh_next                                     all of dL/dh_t      (B, P)
    dm_t = dh_t  (or dh_t W_hr with a projection)               all of dL/dm_t      (B, H)
    dc_t = dc_next + dm_t * o_t * tanh'(c_t)                    all of dL/dc_t
    dz_i = dc_t * g_t * sigma'(z_i)      dz_f = dc_t * c_{t-1} * sigma'(z_f)
    dz_g = dc_t * i_t * tanh'(z_g)       dz_o = dm_t * tanh(c_t) * sigma'(z_o)
    dh_next = dz_t @ W_hh                dc_next = dc_t * f_t

The factors multiplying dc_t and dm_t above depend on the forward pass only, so they are
computed for all steps at once before the loop (`lstm_local_factors`); they are the diagonal
factors of the article's terms A_t, C_t, D_t (eq. 6). The weight gradients are one GEMM
over all steps at the end: dW_hh = sum_t dz_t^T h_{t-1}, dW_ih = sum_t dz_t^T x_t,
dW_hr = sum_t dh_t^T m_t.

Every operation is a plain differentiable torch op (no in-place writes, no `out=`), so
autograd can differentiate the backward itself: `functions.py` runs this pair with grad
enabled when a graph of the gradient is asked for (double backward).

Variable lengths (`packing.py`): with batch_sizes (T,), the batch is sorted by decreasing
length and step t runs on its first n_t = batch_sizes[t] rows only, in both loops:

    gates_t[:n_t], h_t[:n_t], c_t[:n_t] from h_{t-1}[:n_t], c_{t-1}[:n_t]    (n_t, 4H), (n_t, H)
    dh_next[:n_t], dc_next[:n_t] = dz_t[:n_t] @ W_hh, dc_t[:n_t] * f_t[:n_t]  (n_t, P), (n_t, H)

Rows n_t .. B-1 of the gates, h_t, c_t, dh_t, dc_t, dz_t are zero (ended sequences). Going
back, the batch grows: at step t the rows n_{t+1} .. n_t-1 (the sequences whose last step is
t) join dh_next, dc_next with their dL/dh_n, dL/dc_n, where their final state was read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vanishing.nn.packing import active_rows, zero_padded
from vanishing.nn.projection import ALL_GRADIENTS, Needed, project_input, weight_gradients


@dataclass
class LSTMCache:
    """What backward needs from forward: six numbers per hidden unit and step (seven with a
    projection)."""

    x: Tensor  # (T, B, I) input
    hs: Tensor  # (T+1, B, P) h_0 .. h_T; P = H without a projection
    cs: Tensor  # (T+1, B, H) c_0 .. c_T
    gates: Tensor  # (T, B, 4H) activations [i, f, g, o]
    ms: Tensor | None  # (T, B, H) m_t = o_t tanh(c_t) before the projection; None without
    W_ih: Tensor  # (4H, I)
    W_hh: Tensor  # (4H, P)
    W_hr: Tensor | None  # (P, H) the projection; None without
    batch_sizes: Tensor | None  # (T,) rows running at each step; None: all B


def lstm_step_forward(
    z_t: Tensor, h_prev: Tensor, c_prev: Tensor, W_hh: Tensor, W_hr: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One step of n rows: z_t (n, 4H) = W_ih x_t + b, h_prev (n, P), c_prev (n, H).

    Returns gates_t (n, 4H) = [i_t, f_t, g_t, o_t], c_t (n, H), m_t (n, H), h_t (n, P).
    """
    H = c_prev.shape[1]
    z = torch.addmm(z_t, h_prev, W_hh.t())  # (n, 4H) pre-activations [z_i, z_f, z_g, z_o]
    s = z.sigmoid()  # (n, 4H): i, f, o (its g block is not used)
    gates = torch.cat((s[:, : 2 * H], z[:, 2 * H : 3 * H].tanh(), s[:, 3 * H :]), 1)
    i, f, g, o = gates.chunk(4, 1)  # (n, H) each: i_t, f_t, g_t, o_t
    c = torch.addcmul(f * c_prev, i, g)  # (n, H) c_t
    m = o * c.tanh()  # (n, H) m_t
    h = m if W_hr is None else m @ W_hr.t()  # (n, P) h_t
    return gates, c, m, h


def lstm_forward(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b: Tensor | None,
    W_hr: Tensor | None = None,
    batch_sizes: Tensor | None = None,
) -> tuple[Tensor, Tensor, LSTMCache]:
    """Run the layer over x (T, B, I) from h0 (B, P), c0 (B, H); returns (hs, cs, cache).

    hs (T+1, B, P), cs (T+1, B, H): index 0 is the initial state, hs[1:] the output
    sequence. With batch_sizes (T,) step t runs rows :batch_sizes[t] only; every buffer is
    zero beyond each length (`packing.final_state` reads each row's last step).
    """
    T, B, _ = x.shape
    z = project_input(x, W_ih, b).view(T, B, W_ih.shape[0])  # (T, B, 4H) W_ih x_t + b
    h, c = h0, c0  # (B, P), (B, H)
    hs, cs, gates, ms = [h0], [c0], [], []
    for t, n in enumerate(active_rows(batch_sizes, T, B)):
        gates_t, c_t, m_t, h_t = lstm_step_forward(z[t, :n], h[:n], c[:n], W_hh, W_hr)
        h, c = zero_padded(h_t, B), zero_padded(c_t, B)  # (B, P), (B, H)
        hs.append(h), cs.append(c), gates.append(zero_padded(gates_t, B))
        ms.append(zero_padded(m_t, B))
    hs_, cs_ = torch.stack(hs), torch.stack(cs)  # (T+1, B, P), (T+1, B, H)
    ms_ = None if W_hr is None else torch.stack(ms)  # (T, B, H)
    cache = LSTMCache(x, hs_, cs_, torch.stack(gates), ms_, W_ih, W_hh, W_hr, batch_sizes)
    return hs_, cs_, cache


def lstm_local_factors(gates: Tensor, c_prev: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """The factors of the backward step that depend on the forward pass only, any steps.

    gates (..., 4H): activations [i_t, f_t, g_t, o_t]; c_prev, c (..., H): c_{t-1}, c_t.
    Returns dc_dh (..., H) = o_t tanh'(c_t), the factor from dL/dh_t (dL/dm_t with a
    projection) to dL/dc_t, and
    dz (..., 4H) = [g_t sigma'(z_i), c_{t-1} sigma'(z_f), i_t tanh'(z_g), tanh(c_t) sigma'(z_o)],
    the factors from dL/dc_t (first three blocks) and dL/dh_t (last block) to dL/dz_t.
    They are also the diagonal factors of the article's A_t, C_t, D_t (eq. 6): left, the
    first three blocks of dz at step t; right, dc_dh at step t-1 (`vanishing.gradflow`).
    The kernel computes the same factors inside its loop under the same name (`bptt.cpp`).
    """
    i, f, g, o = gates.chunk(4, -1)  # (..., H) each
    tanh_c = torch.tanh(c)  # (..., H)
    dc_dh = o * (1.0 - tanh_c * tanh_c)  # (..., H)
    dz = torch.cat(
        (g * i * (1.0 - i), c_prev * f * (1.0 - f), i * (1.0 - g * g), tanh_c * o * (1.0 - o)),
        dim=-1,
    )  # (..., 4H)
    return dc_dh, dz


def lstm_step_backward(
    dout_t: Tensor,
    dh_next: Tensor,
    dc_next: Tensor,
    dc_dh_t: Tensor,
    k_t: Tensor,
    f_t: Tensor,
    W_hh: Tensor,
    W_hr: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One reverse step of n rows, from dout_t, dh_next (n, P) and dc_next (n, H).

    dc_dh_t (n, H) and k_t (n, 4H) are the step's `lstm_local_factors`; f_t (n, H).
    Returns dh_t (n, P), dc_t (n, H), dz_t (n, 4H), and dh_next (n, P), dc_next (n, H) for
    step t-1.
    """
    dh = dout_t + dh_next  # (n, P) dL/dh_t
    dm = dh if W_hr is None else dh @ W_hr  # (n, H) dL/dm_t
    dc = torch.addcmul(dc_next, dm, dc_dh_t)  # (n, H) dL/dc_t
    dz = torch.cat((dc, dc, dc, dm), 1) * k_t  # (n, 4H) [dz_i, dz_f, dz_g, dz_o] = dL/dz_t
    return dh, dc, dz, dz @ W_hh, dc * f_t  # ..., dL/dh_{t-1}, dL/dc_{t-1} through step t


def lstm_backward(
    dout: Tensor, dh_n: Tensor, dc_n: Tensor, cache: LSTMCache, needed: Needed = ALL_GRADIENTS
) -> tuple[Tensor | None, ...]:
    """Gradients from dout = dL/d(output) (T, B, P), dh_n = dL/dh_T (B, P), dc_n = dL/dc_T.

    Returns (dx (T, B, I) or None, dh0 (B, P), dc0 (B, H), dW_ih (4H, I), dW_hh (4H, P),
    db (4H,), dW_hr (P, H) or None, dh (T, B, P), dc (T, B, H)), where dh[t], dc[t] =
    dL/dh_t, dL/dc_t count every path to the loss; dx and the weight gradients are None
    where `needed` says so.
    """
    x, hs, cs, W_hh, W_hr = cache.x, cache.hs, cache.cs, cache.W_hh, cache.W_hr
    T, B, _ = x.shape
    H = cs.shape[2]
    dc_dh, k = lstm_local_factors(cache.gates, cs[:-1], cs[1:])  # (T, B, H), (T, B, 4H)
    f = cache.gates[:, :, H : 2 * H]  # (T, B, H)
    dh, dc, dz = [None] * T, [None] * T, [None] * T  # per step: (B, P), (B, H), (B, 4H)
    dh_next, dc_next, m = dh_n[:0], dc_n[:0], 0  # (m, P), (m, H): the rows running after t
    rows = active_rows(cache.batch_sizes, T, B)
    for t in reversed(range(T)):
        n = rows[t]
        if n > m:  # the sequences whose last step is t join, with their dL/dh_n, dL/dc_n
            dh_next = torch.cat((dh_next, dh_n[m:n]))  # (n, P)
            dc_next = torch.cat((dc_next, dc_n[m:n]))  # (n, H)
            m = n
        dh_t, dc_t, dz_t, dh_next, dc_next = lstm_step_backward(
            dout[t, :n], dh_next, dc_next, dc_dh[t, :n], k[t, :n], f[t, :n], W_hh, W_hr
        )
        dh[t], dc[t], dz[t] = (zero_padded(a, B) for a in (dh_t, dc_t, dz_t))
    dh_, dc_, dz_ = torch.stack(dh), torch.stack(dc), torch.stack(dz)
    dx, dW_ih, dW_hh, db = weight_gradients(dz_, x, hs, cache.W_ih, needed)
    dW_hr = projection_gradient(dh_, cache.ms) if W_hr is not None and needed.dW_hr else None
    return dx, dh_next, dc_next, dW_ih, dW_hh, db, dW_hr, dh_, dc_


def projection_gradient(dh: Tensor, ms: Tensor) -> Tensor:
    """dW_hr (P, H) = sum_t dh_t^T m_t, from dh (T, B, P) and ms (T, B, H): one GEMM."""
    T, B, P = dh.shape
    return dh.reshape(T * B, P).t() @ ms.reshape(T * B, ms.shape[2])
