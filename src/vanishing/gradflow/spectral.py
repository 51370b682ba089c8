"""Spectral norms of step Jacobians and of their products over lags (`steps.py`'s factors).

Exact (for checking): form each H x H matrix and take sqrt(lambda_max(M^T M)) in float64.
Estimates (for speed): apply the factors to vectors only, never forming a matrix.
- `lanczos_norm`: sigma_max of a whole batch of operators at once, by Golub-Kahan-Lanczos.
- `product_norms_estimate`: ||J_T .. J_{T-l+1}||_2 for every lag l: Lanczos for the short
  lags, a block Krylov sweep (one backward, one forward, one backward pass over the steps)
  for all of them.
Every estimate is a Rayleigh quotient, so it never exceeds the exact norm (up to rounding);
docs/gradflow.md gives the accuracy measured against the exact values. With variable lengths
(end-aligned steps, `steps.py`) the product norms of lag l are averaged over the sequences
with more than l steps; no sequence's products reach into another's or its own padding.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from vanishing.gradflow.steps import F64, LSTMSteps, RNNSteps, batch_mean
from vanishing.nn import kernel

LANCZOS_ITERATIONS = 6  # Golub-Kahan-Lanczos steps per operator (matrix-vector pairs)
SWEEP_COLUMNS = 8  # vectors per sequence added to the Krylov basis in each round
SWEEP_POWER = 1  # rounds (a backward and a forward pass each) before the last backward pass
SHORT_LAGS = 8  # lags 1 .. SHORT_LAGS also get their own Lanczos estimate

Operator = Callable[[Tensor], Tensor]


def check_positive(name: str, value: object) -> None:
    """ValueError unless value is an integer >= 1 (a number of vectors or iterations)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def spectral_norm(M: Tensor) -> Tensor:
    """Largest singular value of each matrix of M (..., H, H): sqrt(lambda_max(M^T M)).

    Same value as torch.linalg.matrix_norm(M, ord=2) to ~1e-15 relative, but a symmetric
    eigensolver instead of a batched SVD (which ran 100x slower on 2 busy cores). Each
    matrix is divided by its largest |entry| first, so products near under/overflow are safe.
    """
    s = M.abs().amax(dim=(-2, -1), keepdim=True)  # (..., 1, 1); inf or nan if M is
    ok = torch.isfinite(s) & (s > 0)  # (..., 1, 1)
    N = torch.where(ok, M / torch.where(ok, s, 1.0), 0.0)  # (..., H, H) entries in [-1, 1]
    lam = torch.linalg.eigvalsh(N.mT @ N)[..., -1].clamp_min(0.0)  # (...,) largest eigenvalue
    return torch.where(ok[..., 0, 0], lam.sqrt() * s[..., 0, 0], s[..., 0, 0])  # (...,)


def tridiagonal_max_eigenvalue(d: Tensor, e: Tensor, iterations: int = 32) -> Tensor:
    """Largest eigenvalue of symmetric tridiagonal matrices by bisection on Sturm counts.

    d (N, k) the diagonals, e (N, k-1) the off-diagonals, float64. The root lies in
    [max d, Gershgorin bound]; `iterations` halvings leave it to 2^-32 of that width. CPU
    tensors go to the compiled kernel when it is available (Laguerre's method, 1e-12 relative).
    """
    if kernel.available() and d.device.type == "cpu" and d.dtype == e.dtype == F64:
        return kernel.tridiagonal_max_eigenvalue(d.contiguous(), e.contiguous())
    k = d.shape[1]
    r = torch.zeros_like(d)  # (N, k) Gershgorin radii
    r[:, :-1] += e.abs()
    r[:, 1:] += e.abs()
    lo, hi = d.amax(dim=1), (d + r).amax(dim=1)  # (N,)
    e2 = e.square().clamp_min(torch.finfo(d.dtype).tiny)  # (N, k-1); a 0 pivot gives -inf
    for _ in range(iterations):
        x = 0.5 * (lo + hi)  # (N,)
        dx = d - x.unsqueeze(1)  # (N, k)
        q = dx[:, 0]  # pivots of the LDL^T factorisation of T - x I
        below = q < 0  # (N,) eigenvalues below x so far, counted by negative pivots
        count = below.to(torch.int32)
        for j in range(1, k):
            q = torch.addcdiv(dx[:, j], e2[:, j - 1], q, value=-1.0)
            count += q < 0
        above_all = count == k  # (N,) x lies above every eigenvalue
        hi = torch.where(above_all, x, hi)
        lo = torch.where(above_all, lo, x)
    return hi


def lanczos_norm(mv: Operator, rmv: Operator, v: Tensor, iterations: int) -> Tensor:
    """Largest singular value of each operator M of a batch, by Golub-Kahan-Lanczos.

    mv(v) = M v and rmv(u) = M^T u act on the last axis of (..., n) batches; v (..., n) is the
    start. k = iterations steps build M V_k = U_k B_k with B_k upper bidiagonal (alpha on
    the diagonal, beta above it); sigma_max(B_k) is the largest singular value of M on the
    Krylov space K_k(M^T M, v): it grows with k, never exceeds sigma_max(M) (a Rayleigh
    quotient; up to rounding) and equals it once k reaches the rank. No
    reorthogonalisation: in floating point its loss only repeats converged values.
    """
    tiny = torch.finfo(v.dtype).tiny
    iterations = max(1, min(iterations, v.shape[-1]))  # the Krylov space has at most n dims
    v = v / v.norm(dim=-1, keepdim=True).clamp_min(tiny)  # (..., n)
    alphas: list[Tensor] = []
    betas: list[Tensor] = []
    u_prev: Tensor | None = None
    for j in range(iterations):
        u = mv(v)  # (..., m)
        if u_prev is not None:
            u = u - betas[-1].unsqueeze(-1) * u_prev
        alpha = u.norm(dim=-1)  # (...,)
        alphas.append(alpha)
        if j == iterations - 1:
            break
        u = u / alpha.clamp_min(tiny).unsqueeze(-1)
        w = rmv(u) - alpha.unsqueeze(-1) * v  # (..., n)
        beta = w.norm(dim=-1)  # (...,)
        betas.append(beta)
        v, u_prev = w / beta.clamp_min(tiny).unsqueeze(-1), u
    a = torch.stack(alphas, dim=-1).flatten(0, -2).to(F64)  # (N, k) diagonal of B_k
    if iterations == 1:
        return a[:, 0].reshape(v.shape[:-1])
    b = torch.stack(betas, dim=-1).flatten(0, -2).to(F64)  # (N, k-1) superdiagonal of B_k
    d = a.square()  # (N, k) diagonal of B_k^T B_k
    d[:, 1:] += b.square()
    lam = tridiagonal_max_eigenvalue(d, a[:, :-1] * b)  # (N,)
    return lam.clamp_min(0.0).sqrt().reshape(v.shape[:-1])


def product_norms_exact(steps: RNNSteps | LSTMSteps, T: int) -> np.ndarray:
    """(T,) batch mean of ||J_T J_{T-1} .. J_{T-l+1}||_2 for l = 0 .. T-1, forming each J
    (over the sequences with lag l, `steps.real`)."""
    out = np.ones(T)
    real = steps.real  # (T, B): sequence b has lag l; None: all do
    P: Tensor | None = None  # (B, H, H) product of the last l step Jacobians
    for lag in range(1, T):
        J = steps.jacobian(T - lag)  # (B, H, H) processing index T - lag is step T - lag + 1
        P = J if P is None else P @ J
        out[lag] = batch_mean(spectral_norm(P), None if real is None else real[lag]).item()
    return out


def short_lag_norms(steps: RNNSteps | LSTMSteps, T: int, lags: int, iterations: int) -> Tensor:
    """(lags, B) ||P_l||_2 of every sequence for l = 1 .. lags, by Lanczos on all at once.

    Row l-1 of a (lags, B, H) block is lag l's vector: P_l y starts at processing index T - l
    and goes through the steps T - l + 1 .. T; P_l^T z runs back the same way.
    """

    def forward(y: Tensor) -> Tensor:  # P_l y_l for every lag l
        y = y.clone()  # (lags, B, H)
        for lag in range(lags, 0, -1):  # index T - lag: lags >= lag are under way
            y[lag - 1 :] = steps.jvp(T - lag, y[lag - 1 :])
        return y

    def backward(z: Tensor) -> Tensor:  # P_l^T z_l for every lag l
        z = z.clone()
        for lag in range(1, lags + 1):
            z[lag - 1 :] = steps.vjp(T - lag, z[lag - 1 :])
        return z

    B, H = steps.dim
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(lags, B, H, generator=gen, dtype=steps.dtype)  # (lags, B, H)
    return lanczos_norm(forward, backward, v, iterations)


def _orthonormal(Z: Tensor) -> Tensor:
    """Orthonormal rows spanning the rows of each sequence's block: Z (m, B, H) -> (m, B, H)."""
    return torch.linalg.qr(Z.permute(1, 2, 0))[0].permute(2, 0, 1)


def _sweep_back(steps: RNNSteps | LSTMSteps, T: int, Q: Tensor) -> tuple[Tensor, Tensor]:
    """P_l^T Q for l = 1 .. T-1 as (Y, log_scale): Y (T-1, m, B, H), P_l^T Q = Y[l-1] *
    exp(log_scale[l-1]) per sequence (log_scale (T-1, B) float64), so nothing under/overflows."""
    m, B, H = Q.shape
    Y = Q.new_empty(T - 1, m, B, H)
    scale = Q.new_empty(T - 1, B)  # (T-1, B) each step's normalising factor
    y = Q
    for lag in range(1, T):
        y = steps.vjp(T - lag, y)  # (m, B, H)
        n = torch.linalg.vector_norm(y, dim=(0, 2), out=scale[lag - 1])  # (B,)
        y = torch.div(y, n.clamp_min_(torch.finfo(y.dtype).tiny).unsqueeze(1), out=Y[lag - 1])
    return Y, scale.to(F64).log().cumsum(dim=0)


def _sweep_forward(
    steps: RNNSteps | LSTMSteps, T: int, Y: Tensor, log_scale: Tensor, log_weight: Tensor
) -> Tensor:
    """sum_l w_l P_l (P_l^T Q) for Y, log_scale of `_sweep_back` and log w_l (T-1, B): one
    forward pass; the block of lag l joins at processing index T - l. Returns it normalised
    per sequence: (m, B, H). A weight of -inf leaves a block out; while a sequence's sum is
    still 0 (log_z = -inf) it stays 0."""
    tiny = torch.finfo(Y.dtype).tiny
    log_c = log_scale + log_weight  # (T-1, B) log scale of each lag's block
    z = torch.zeros_like(Y[0])  # (m, B, H) the sum so far, times exp(-log_z)
    log_z = torch.full_like(log_c[0], -torch.inf)  # (B,)
    for lag in range(T - 1, 0, -1):
        top = torch.maximum(log_z, log_c[lag - 1])  # (B,)
        top = torch.where(torch.isfinite(top), top, 0.0)  # nothing so far nor here: any scale
        z_scale = (log_z - top).exp().to(z.dtype).unsqueeze(1)  # (B, 1)
        y_scale = (log_c[lag - 1] - top).exp().to(z.dtype).unsqueeze(1)  # (B, 1)
        z = steps.jvp(T - lag, torch.addcmul(z * z_scale, Y[lag - 1], y_scale))  # (m, B, H)
        n = torch.linalg.vector_norm(z, dim=(0, 2))  # (B,)
        z = z / n.clamp_min(tiny).unsqueeze(1)
        log_z = top + torch.where(n > 0, n.clamp_min(tiny).to(F64).log(), -torch.inf)
    return z


def product_norms_estimate(
    steps: RNNSteps | LSTMSteps,
    T: int,
    columns: int = SWEEP_COLUMNS,
    iterations: int = LANCZOS_ITERATIONS,
    power: int = SWEEP_POWER,
    seed: int = 0,
) -> np.ndarray:
    """As product_norms_exact, from matrix-vector products only: O(T B H^2 columns power).

    Block Krylov on the left end k = T, for all lags at once. From Q_0 (H x columns,
    random, orthonormal), each of `power` rounds runs a backward pass, giving P_l^T Q_j for
    every lag, and a forward pass that sums P_l P_l^T Q_j / ||P_l^T Q_j||_F^2 over the lags
    (every lag weighs the same); what that sum adds to the basis becomes Q_{j+1}. A last
    backward pass gives P_l^T Q for the whole basis Q = [Q_0 .. Q_power], and
    ||P_l^T Q||_2 (the largest eigenvalue of each lag's Gram) is the estimate: exact once
    the basis spans R^H. Lags 1 .. SHORT_LAGS, whose directions differ most, also get
    `iterations` Lanczos steps; each lag keeps the larger of its two lower bounds. With
    variable lengths a sequence's lags beyond its own (zero products) weigh nothing in the
    sum and are left out of the mean.
    """
    out = np.ones(T)
    if T == 1:
        return out
    real = steps.real  # (T, B): sequence b has lag l; None: all do
    B, H = steps.dim
    k = min(columns, H)
    gen = torch.Generator().manual_seed(seed)
    Q = _orthonormal(torch.randn(k, B, H, generator=gen, dtype=steps.dtype))  # (k, B, H)
    basis = Q  # (m, B, H) orthonormal rows per sequence
    blocks = [_sweep_back(steps, T, Q)]  # [(Y (T-1, k, B, H), log_scale (T-1, B))]
    for _ in range(power):
        if basis.shape[0] >= H:
            break
        Y, log_scale = blocks[-1]
        fro = Y.square().sum(dim=(1, 3)).to(F64).log() + 2 * log_scale  # (T-1, B) log ||.||_F^2
        weight = -fro  # (T-1, B); -inf: a lag the sequence does not have, or a zero block
        weight = torch.where(torch.isfinite(weight), weight, -torch.inf)
        if real is not None:
            weight = torch.where(real[1:], weight, -torch.inf)
        Z = _sweep_forward(steps, T, Y, log_scale, weight)  # (k, B, H)
        m = basis.shape[0]
        basis = _orthonormal(torch.cat((basis, Z)))[: min(m + k, H)]
        blocks.append(_sweep_back(steps, T, basis[m:]))
    top = torch.stack([log_scale for _, log_scale in blocks]).amax(dim=0)  # (T-1, B)
    Y = torch.cat(
        [Y * (ls - top).exp().to(Y.dtype)[:, None, :, None] for Y, ls in blocks], dim=1
    ).permute(0, 2, 1, 3)  # (T-1, B, m, H): P_l^T Q / exp(top)
    lam = torch.linalg.eigvalsh(Y @ Y.mT)[..., -1].to(F64)  # (T-1, B) largest of each Gram
    log_sigma = top + 0.5 * lam.clamp_min(torch.finfo(F64).tiny).log()  # (T-1, B)
    short = min(SHORT_LAGS, T - 1)
    if short and basis.shape[0] < H:
        s = short_lag_norms(steps, T, short, iterations).to(F64)  # (short, B)
        log_sigma[:short] = torch.maximum(log_sigma[:short], s.log())
    out[1:] = batch_mean(log_sigma.exp(), None if real is None else real[1:]).cpu().numpy()
    return out
