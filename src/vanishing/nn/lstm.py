"""The article's LSTM: forward and hand-derived backpropagation through time.

One layer, one direction, axes (T, B, feature) throughout. Gate order is PyTorch's
[i, f, g, o] along the 4H axis of W_ih (4H, I), W_hh (4H, H) and b = bias_ih + bias_hh;
g_t is the article's candidate c~_t. W_hh's blocks U_i, U_f, U_g, U_o are the article's
U_i, U_f, U_c, U_o.

Forward, for t = 1 .. T (article eq. 5):

    [z_i, z_f, z_g, z_o] = W_ih x_t + b + W_hh h_{t-1}
    i_t = sigma(z_i)   f_t = sigma(z_f)   g_t = tanh(z_g)   o_t = sigma(z_o)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

Backward, for t = T .. 1, with dc_next, dh_next the gradients reaching c_t, h_t from step t+1:

    dh_t = dout_t + dh_next                                     all of dL/dh_t
    dc_t = dc_next + dh_t * o_t * tanh'(c_t)                    all of dL/dc_t
    dz_i = dc_t * g_t * sigma'(z_i)      dz_f = dc_t * c_{t-1} * sigma'(z_f)
    dz_g = dc_t * i_t * tanh'(z_g)       dz_o = dh_t * tanh(c_t) * sigma'(z_o)
    dh_next = dz_t @ W_hh                dc_next = dc_t * f_t

The factors multiplying dc_t and dh_t above depend on the forward pass only, so they are
computed for all steps at once before the loop (`lstm_local_factors`); they are the diagonal
factors of the article's terms A_t, C_t, D_t (eq. 6). The weight gradients are one GEMM
over all steps at the end: dW_hh = sum_t dz_t^T h_{t-1}, dW_ih = sum_t dz_t^T x_t.

Variable lengths (`packing.py`): with batch_sizes (T,), the batch is sorted by decreasing
length and step t runs on its first n_t = batch_sizes[t] rows only, in both loops:

    gates_t[:n_t], h_t[:n_t], c_t[:n_t] from h_{t-1}[:n_t], c_{t-1}[:n_t]    (n_t, 4H), (n_t, H)
    dh_next[:n_t], dc_next[:n_t] = dz_t[:n_t] @ W_hh, dc_t[:n_t] * f_t[:n_t]  (n_t, H)

Rows n_t .. B-1 of the gates, h_t, c_t, dh_t, dc_t, dz_t are zero (ended sequences). Going
back, the batch grows: at step t the rows n_{t+1} .. n_t-1 (the sequences whose last step is
t) join dh_next, dc_next with their dL/dh_n, dL/dc_n, where their final state was read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vanishing.nn.packing import active_rows, running_steps, zero_ended
from vanishing.nn.projection import project_input, weight_gradients


@dataclass
class LSTMCache:
    """What backward needs from forward: six numbers per hidden unit and step."""

    x: Tensor  # (T, B, I) input
    hs: Tensor  # (T+1, B, H) h_0 .. h_T
    cs: Tensor  # (T+1, B, H) c_0 .. c_T
    gates: Tensor  # (T, B, 4H) activations [i, f, g, o]
    W_ih: Tensor  # (4H, I)
    W_hh: Tensor  # (4H, H)
    batch_sizes: Tensor | None  # (T,) rows running at each step; None: all B


def lstm_step_forward(
    gates_t: Tensor, h_prev: Tensor, c_prev: Tensor, W_hhT: Tensor, h_t: Tensor, c_t: Tensor
) -> None:
    """One step; writes the activations into gates_t (B, 4H), and h_t, c_t (B, H).

    gates_t holds W_ih x_t + b on entry; W_hhT is W_hh^T (H, 4H).
    """
    H = c_t.shape[1]
    gates_t.addmm_(h_prev, W_hhT)  # (B, 4H) pre-activations [z_i, z_f, z_g, z_o]
    gates_t[:, : 2 * H].sigmoid_()  # (B, 2H) i_t, f_t
    gates_t[:, 2 * H : 3 * H].tanh_()  # (B, H) g_t
    gates_t[:, 3 * H :].sigmoid_()  # (B, H) o_t
    i, f, g, o = gates_t.chunk(4, 1)  # (B, H) each
    torch.mul(f, c_prev, out=c_t).addcmul_(i, g)  # (B, H) c_t = f c_{t-1} + i g
    torch.tanh(c_t, out=h_t).mul_(o)  # (B, H) h_t = o tanh(c_t)


def lstm_buffers(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    W_ih: Tensor,
    b: Tensor | None,
    batch_sizes: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The forward's buffers, ready for the time loop (shared with the compiled kernel).

    hs, cs (T+1, B, H) with h0, c0 at index 0; gates (T, B, 4H) holding W_ih x_t + b.
    With batch_sizes, the steps of ended sequences are zero in all three.
    """
    T, B, _ = x.shape
    H = h0.shape[1]
    new = torch.empty if batch_sizes is None else torch.zeros  # zeros: ended sequences' steps
    hs = new(T + 1, B, H, dtype=x.dtype, device=x.device)  # (T+1, B, H)
    cs = new(T + 1, B, H, dtype=x.dtype, device=x.device)  # (T+1, B, H)
    hs[0], cs[0] = h0, c0
    gates = torch.empty(T, B, 4 * H, dtype=x.dtype, device=x.device)  # (T, B, 4H)
    project_input(x, W_ih, b, out=gates.view(T * B, 4 * H))  # W_ih x_t + b, all steps
    zero_ended(gates, batch_sizes)
    return hs, cs, gates


def lstm_forward(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    W_ih: Tensor,
    W_hh: Tensor,
    b: Tensor | None,
    batch_sizes: Tensor | None = None,
) -> tuple[Tensor, Tensor, LSTMCache]:
    """Run the layer over x (T, B, I) from (h0, c0) (B, H); returns (hs, cs, cache).

    hs, cs (T+1, B, H): index 0 is the initial state, hs[1:] the output sequence. With
    batch_sizes (T,) step t runs rows :batch_sizes[t] only; all buffers are zero beyond each
    length (`final_state`).
    """
    hs, cs, gates = lstm_buffers(x, h0, c0, W_ih, b, batch_sizes)
    W_hhT = W_hh.t()  # (H, 4H)
    h_s, c_s = hs.unbind(0), cs.unbind(0)  # T+1 views (B, H) each
    steps = zip(  # T views each, (n_t, 4H) and (n_t, H): the running rows of step t
        *(
            running_steps(a, batch_sizes)
            for a in (gates.unbind(0), h_s[:-1], c_s[:-1], h_s[1:], c_s[1:])
        ),
        strict=True,
    )
    for gates_t, h_prev, c_prev, h_t, c_t in steps:
        lstm_step_forward(gates_t, h_prev, c_prev, W_hhT, h_t, c_t)
    return hs, cs, LSTMCache(x, hs, cs, gates, W_ih, W_hh, batch_sizes)


def lstm_local_factors(gates: Tensor, c_prev: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """The factors of the backward step that depend on the forward pass only, any steps.

    gates (..., 4H): activations [i_t, f_t, g_t, o_t]; c_prev, c (..., H): c_{t-1}, c_t.
    Returns dc_dh (..., H) = o_t tanh'(c_t), the factor from dL/dh_t to dL/dc_t, and
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
    f_t: Tensor,
    W_hh: Tensor,
    dh_t: Tensor,
    dc_t: Tensor,
    dz_t: Tensor,
) -> tuple[Tensor, Tensor]:
    """One reverse step; writes dh_t, dc_t (B, H) and dz_t (B, 4H), returns (dh_next, dc_next).

    dz_t holds the local factors of `lstm_local_factors` on entry and dL/dz_t on exit.
    """
    H = dh_t.shape[1]
    torch.add(dout_t, dh_next, out=dh_t)  # (B, H) dL/dh_t
    torch.addcmul(dc_next, dh_t, dc_dh_t, out=dc_t)  # (B, H) dL/dc_t
    dz_t.view(-1, 4, H)[:, :3].mul_(dc_t.unsqueeze(1))  # (B, 3, H) dz_i, dz_f, dz_g
    dz_t[:, 3 * H :].mul_(dh_t)  # (B, H) dz_o
    return dz_t @ W_hh, dc_t * f_t  # (B, H) dL/dh_{t-1}, dL/dc_{t-1} through step t


def lstm_backward(
    dout: Tensor, dh_n: Tensor, dc_n: Tensor, cache: LSTMCache, need_dx: bool = True
) -> tuple[Tensor | None, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients from dout = dL/d(output) (T, B, H) and dh_n, dc_n = dL/dh_T, dL/dc_T (B, H).

    Returns (dx (T, B, I) or None, dh0, dc0 (B, H), dW_ih (4H, I), dW_hh (4H, H), db (4H,),
    dh, dc (T, B, H)), where dh[t], dc[t] = dL/dh_t, dL/dc_t count every path to the loss.
    """
    x, hs, W_ih, W_hh = cache.x, cache.hs, cache.W_ih, cache.W_hh
    T, B, _ = x.shape
    H = W_hh.shape[1]
    dc_dh, dz = lstm_local_factors(cache.gates, cache.cs[:-1], cache.cs[1:])  # (T,B,H), (T,B,4H)
    zero_ended(dz, cache.batch_sizes)  # dz_t of ended sequences: zero, for the GEMMs below
    f = cache.gates[:, :, H : 2 * H]  # (T, B, H)
    new = torch.empty_like if cache.batch_sizes is None else torch.zeros_like
    dh = new(dc_dh)  # (T, B, H) dL/dh_t, zero beyond each length
    dc = new(dc_dh)  # (T, B, H) dL/dc_t, zero beyond each length
    rows = active_rows(cache.batch_sizes, T, B)
    steps = zip(  # T views each, (n_t, H) and dz_t (n_t, 4H): the running rows of step t
        rows,
        *(running_steps(a.unbind(0), cache.batch_sizes) for a in (dout, dc_dh, f, dh, dc, dz)),
        strict=True,
    )
    dh_next, dc_next, m = dh_n[:0], dc_n[:0], 0  # (m, H) each: the rows running after step t
    for n, dout_t, dc_dh_t, f_t, dh_t, dc_t, dz_t in reversed(list(steps)):
        if n > m:  # the sequences whose last step is t join, with their dL/dh_n, dL/dc_n
            dh_next, dc_next, m = (
                torch.cat((dh_next, dh_n[m:n])),
                torch.cat((dc_next, dc_n[m:n])),
                n,
            )  # (n, H) each
        dh_next, dc_next = lstm_step_backward(
            dout_t, dh_next, dc_next, dc_dh_t, f_t, W_hh, dh_t, dc_t, dz_t
        )
    dx, dW_ih, dW_hh, db = weight_gradients(dz, x, hs, W_ih, need_dx)
    return dx, dh_next, dc_next, dW_ih, dW_hh, db, dh, dc
