"""The LSTM's dc_t/dc_{t-1} = A_t + B_t + C_t + D_t (article eq. 6): the matrices and their norms.

Steps in processing order (time order for the forward direction); factors from `steps.py`.
||B_t|| = max f_t exactly; the other norms are exact (each H x H matrix formed) or estimated
for every step and sequence at once by Lanczos on the factors (`spectral.lanczos_norm`, or
the compiled kernel's `lstm_term_norms` on the CPU).
Variable lengths (trace.lengths): step t is each sequence's own t-th processed step, and
the batch mean at step t is over the sequences with at least t steps (`LSTMTerms.count`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vanishing.gradflow.spectral import (
    LANCZOS_ITERATIONS,
    check_positive,
    lanczos_norm,
    spectral_norm,
)
from vanishing.gradflow.steps import (
    F64,
    LSTMSteps,
    batch_mean,
    check_steps,
    check_trace,
    lstm_steps,
    start_aligned,
)
from vanishing.nn import Trace, kernel
from vanishing.nn.naming import is_lstm


@dataclass
class LSTMTerms:
    """The four terms of the LSTM's dc_t/dc_{t-1} = A_t + B_t + C_t + D_t per step t = 1 .. T.

    A, B, C, D, total: (T,) batch mean of the spectral norm of each term and of their sum;
    forget_mean: (T,) mean of f_t over batch and units; forget: every f_t value, flattened.
    method: 'exact' or 'estimate' (Lanczos lower bounds; B is exact either way). count (T,):
    the sequences with step t, over which every mean at t is taken (B for equal lengths;
    with variable lengths NaN where it is 0, and forget holds the real steps only).
    """

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    D: np.ndarray
    total: np.ndarray
    forget_mean: np.ndarray
    forget: np.ndarray
    method: str = "exact"
    count: np.ndarray | None = None  # (T,) sequences with each step


def _check_lstm(layer: nn.Module, trace: Trace, what: str) -> None:
    if not is_lstm(layer):
        raise ValueError(f"{what} needs an LSTM layer, got {type(layer).__name__}")
    check_trace(layer, trace)


def _from_start(steps: LSTMSteps) -> LSTMSteps:
    """steps with step t of every sequence at index t - 1 (the factors are end-aligned)."""
    if steps.lengths is None:
        return steps
    f, alpha, beta = (start_aligned(x, steps.lengths) for x in (steps.f, steps.alpha, steps.beta))
    return dataclasses.replace(steps, f=f, alpha=alpha, beta=beta)


def lstm_jacobians(
    layer: nn.Module, trace: Trace, article_D: bool = False
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A, B, C, D of dc_t/dc_{t-1} = A_t + B_t + C_t + D_t, each (T, B, H, H) float64.

    Row [t-1, b] is step t (processing order) of sequence b; step 1's A, C, D are 0; with
    variable lengths all four are 0 beyond sequence b's own steps. article_D=True uses the
    article's sigma'(z_g) in D_t instead of tanh'(z_g) (wrong). Memory: 4 T B H^2 floats;
    use lstm_terms for the norms alone.
    """
    _check_lstm(layer, trace, "lstm_jacobians")
    steps = _from_start(lstm_steps(layer, trace, article_D))
    T = steps.f.shape[0]
    terms = [steps.terms(s) for s in range(T)]
    return tuple(torch.stack(x) for x in zip(*terms, strict=True))  # 4 x (T, B, H, H)


def _norms_exact(steps: LSTMSteps) -> np.ndarray:
    """(4, T) batch-mean spectral norms of A_t, C_t, D_t and their sum with B_t, formed."""
    T = steps.f.shape[0]
    real = steps.real  # (T, B) or None
    norms = np.empty((4, T))
    for s in range(T):
        A, B_s, C, D = steps.terms(s)  # (B, H, H) each
        M = torch.stack((A, C, D, A + B_s + C + D))  # (4, B, H, H)
        norms[:, s] = batch_mean(spectral_norm(M), None if real is None else real[s]).tolist()
    return norms


def _starts(U: Tensor, gen: torch.Generator) -> Tensor:
    """Lanczos start vectors (4, H) of the gates i, f, g and of the total: the top right
    singular vector of U_g (gates) and of U (total), where a trained layer's terms point
    (the top eigenvector of each Gram U_g^T U_g, U^T U in float64; U (3H, H) = [U_i; U_f;
    U_g]), plus a tenth of a random unit vector each, so that no direction is missed. The
    same for every step and sequence."""
    H = U.shape[1]
    U = U.detach().to(device="cpu", dtype=F64)
    U_g = U.view(3, H, H)  # (3, H, H)
    grams = torch.cat((U_g.mT @ U_g, (U.T @ U).unsqueeze(0)))  # (4, H, H)
    top = torch.linalg.eigh(grams)[1][..., -1]  # (4, H) eigenvectors of the largest eigenvalues
    r = torch.randn(4, H, generator=gen, dtype=F64)  # (4, H)
    return top + 0.1 * r / r.norm(dim=1, keepdim=True)


def _lanczos_terms(steps: LSTMSteps, start: Tensor, iterations: int) -> Tensor:
    """(4, T-1, B) float64 Lanczos estimates of ||C_s||, ||A_s||, ||D_s|| (gates i, f, g) and
    ||J_s|| for the steps s = 2 .. T, from `_starts`' vectors: by spectral.lanczos_norm (the
    reference of kernel.lstm_term_norms)."""
    T, B, H = steps.f.shape
    alpha = steps.alpha[1:].permute(2, 0, 1, 3).flatten(1, 2)  # (3, N, H) gates i, f, g
    beta = steps.beta[1:].flatten(0, 1)  # (N, H)
    U = steps.U.view(3, H, H)  # (3, H, H) U_i, U_f, U_g

    def mv(x: Tensor) -> Tensor:  # (3, N, H) diag(alpha_g) U_g diag(beta) x
        return torch.bmm(x * beta, U.mT) * alpha

    def rmv(y: Tensor) -> Tensor:  # (3, N, H) diag(beta) U_g^T diag(alpha_g) y
        return torch.bmm(y * alpha, U) * beta

    v = start[:3].unsqueeze(1).expand(alpha.shape)  # (3, N, H)
    gates = lanczos_norm(mv, rmv, v, iterations).view(3, T - 1, B)  # (3, T-1, B)
    s = slice(1, None)
    v = start[3].expand(T - 1, B, H)  # (T-1, B, H)
    total = lanczos_norm(lambda x: steps.jvp(s, x), lambda y: steps.vjp(s, y), v, iterations)
    return torch.cat((gates.to(F64), total.to(F64).unsqueeze(0)))  # (4, T-1, B)


def _norms_estimate(steps: LSTMSteps, iterations: int) -> np.ndarray:
    """As _norms_exact, by `iterations` Lanczos steps on every step and sequence at once.

    diag(alpha_g) U_g diag(beta) (gates i, f, g: C, A, D) and their sum J_s with diag(f)
    for the N = (T-1) B items of steps 2 .. T, from one start vector each (`_starts`): in
    the compiled kernel (`kernel.lstm_term_norms`) when available, else `_lanczos_terms`.
    At step 1, A = C = D = 0 and the sum is B_1 = diag(f_1).
    """
    T, B, H = steps.f.shape
    real = steps.real  # (T, B) or None
    norms = np.zeros((4, T))
    norms[3, 0] = steps.f[0].amax(dim=1).mean().item()  # ||B_1||, every sequence has step 1
    if T == 1:
        return norms
    start = _starts(steps.U, torch.Generator().manual_seed(0)).to(steps.f)  # (4, H)
    if kernel.supports(steps.f):
        f, alpha = steps.f[1:].flatten(0, 1), steps.alpha[1:].flatten(0, 1)  # views, rows spaced
        beta = steps.beta[1:].flatten(0, 1).contiguous()  # (N, H)
        est = kernel.lstm_term_norms(f, alpha, beta, steps.U.contiguous(), start, iterations)
        est = est.view(4, T - 1, B)  # gates i, f, g, total
    else:
        est = _lanczos_terms(steps, start, iterations)  # (4, T-1, B)
    est = est[[1, 0, 2, 3]]  # (4, T-1, B) A, C, D, total
    norms[:, 1:] = batch_mean(est, None if real is None else real[1:]).cpu().numpy()
    return norms


def lstm_terms(
    layer: nn.Module,
    trace: Trace,
    article_D: bool = False,
    *,
    exact: bool = False,
    iterations: int = LANCZOS_ITERATIONS,
    steps: LSTMSteps | None = None,
) -> LSTMTerms:
    """Per-step batch-mean spectral norms of A_t, B_t, C_t, D_t and A_t + B_t + C_t + D_t.

    ||B_t|| = max f_t. exact=True forms every H x H term (float64, O(T B H^3)); otherwise
    `iterations` Lanczos steps in the trace's dtype give lower bounds (O(T B H^2 iterations);
    accuracy: docs/gradflow.md). article_D=True uses the article's sigma'(z_g) in D_t (wrong).
    steps: the trace's `steps.lstm_steps`, if already built (float64 for exact=True).
    """
    _check_lstm(layer, trace, "lstm_terms")
    check_positive("iterations", iterations)
    if steps is not None:
        check_steps(steps, trace)
    else:
        steps = lstm_steps(layer, trace, article_D, dtype=F64 if exact else trace.f.dtype)
    steps = _from_start(steps)
    norms = _norms_exact(steps) if exact else _norms_estimate(steps, iterations)
    f = steps.f.to(F64)  # (T, B, H)
    T, B = f.shape[:2]
    real = steps.real  # (T, B) or None
    if real is None:
        count, forget_mean, forget = np.full(T, B), f.mean(dim=(1, 2)), f
    else:  # (T, B) real steps: the means over them, forget the real steps only
        count, forget_mean, forget = (
            real.sum(dim=1).cpu().numpy(),
            batch_mean(f.mean(dim=2), real),
            f[real],
        )
    return LSTMTerms(
        A=norms[0],
        B=batch_mean(f.amax(dim=2), real).cpu().numpy(),
        C=norms[1],
        D=norms[2],
        total=norms[3],
        forget_mean=forget_mean.cpu().numpy(),
        forget=forget.flatten().cpu().numpy(),
        method="exact" if exact else "estimate",
        count=count,
    )
