"""The all-steps matrix products of the RNN and the LSTM, shared with the compiled kernel.

The input term W_ih x_t + b does not depend on the state, so it is one GEMM over all steps
before the time loop (`project_input`); the weight gradients are sums over all steps, one GEMM
each after the backward loop (`weight_gradients`). G = H for the RNN, 4H for the LSTM.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Needed(NamedTuple):
    """The gradients a backward computes (autograd's ctx.needs_input_grad); the others are
    None and their GEMMs are skipped. A replay that wants only dL/dh_t (gradflow's 'norms',
    the training monitor) skips the weight gradients, about 40 % of a backward."""

    dx: bool = True
    dW_ih: bool = True  # noqa: N815 (the article's names)
    dW_hh: bool = True  # noqa: N815
    db: bool = True
    dW_hr: bool = True  # noqa: N815


ALL_GRADIENTS = Needed()


def project_input(x: Tensor, W_ih: Tensor, b: Tensor | None, out: Tensor | None = None) -> Tensor:
    """(T*B, G) = x (T, B, I) @ W_ih^T (I, G) + b: all steps' input terms in one GEMM,
    written into out if given (the kernel's buffer; not differentiable), else a new tensor."""
    x2 = x.reshape(-1, x.shape[-1])  # (T*B, I)
    if out is None:
        return x2 @ W_ih.t() if b is None else torch.addmm(b, x2, W_ih.t())
    if b is None:
        return torch.mm(x2, W_ih.t(), out=out)
    return torch.addmm(b, x2, W_ih.t(), out=out)


def weight_gradients(
    dz: Tensor, x: Tensor, hs: Tensor, W_ih: Tensor, needed: Needed = ALL_GRADIENTS
) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None]:
    """The all-steps GEMMs of backward, from dz = dL/dz_t (T, B, G) and hs (T+1, B, P).

    Returns (dx (T, B, I), dW_ih (G, I), dW_hh (G, P), db (G,)), each None if not needed:
    dW_hh = sum_t dz_t^T h_{t-1}, dW_ih = sum_t dz_t^T x_t, db = sum_t dz_t, dx_t = dz_t W_ih.
    """
    T, B, G = dz.shape
    dz2 = dz.reshape(T * B, G)  # (T*B, G)
    x2 = x.reshape(T * B, x.shape[2])  # (T*B, I)
    dW_hh = dz2.t() @ hs[:-1].reshape(T * B, hs.shape[2]) if needed.dW_hh else None  # (G, P)
    # (x^T dz)^T, not dz^T x: with a small I, MKL ran the latter 5 - 10x slower (measured).
    dW_ih = (x2.t() @ dz2).t().contiguous() if needed.dW_ih else None  # (G, I)
    db = dz2.sum(0) if needed.db else None  # (G,)
    dx = (dz2 @ W_ih).view(T, B, W_ih.shape[1]) if needed.dx else None  # (T, B, I)
    return dx, dW_ih, dW_hh, db
