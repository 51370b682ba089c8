"""Spectral norms of step Jacobians and of their products over lags (`steps.py`'s factors).

Exact (for checking): form each H x H matrix and take sqrt(lambda_max(M^T M)) in float64.
Estimates (for speed): apply the factors to vectors only, never forming a matrix.
- `lanczos_norm`: sigma_max of a whole batch of operators at once, by Golub-Kahan-Lanczos.
- `product_norms_estimate`: ||J_T .. J_{T-l+1}||_2 for every lag l: Lanczos for the short
  lags, and for all of them bases of the left end carried forward (one forward pass) then
  swept back (one backward pass).
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

LANCZOS_ITERATIONS = 4  # Golub-Kahan-Lanczos steps per operator (matrix-vector pairs)
SWEEP_COLUMNS = 5  # vectors per sequence in each basis of the product estimate
BASIS_SHORTEST = 4  # the shortest basis settles at this lag; each next one BASIS_GROWTH longer
BASIS_GROWTH = 4
BASIS_REACH = 2  # a basis settled at lag L is used up to lag L * BASIS_REACH
QR_EVERY = 4  # steps between re-orthonormalisations of the forward bases
SHORT_LAGS = 4  # lags 1 .. SHORT_LAGS also get their own Lanczos estimate

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


def _gram_schmidt(X: Tensor) -> Tensor:
    """Orthonormal rows of X (N, m, H), m <= H: row i is row i's residual against the rows
    before (Gram-Schmidt, twice), normalised; a dependent row (residual at most sqrt(eps) of
    its norm: its direction would be rounding) becomes the first unit vector e_c whose
    residual's squared norm exceeds (H - i) / (2 H), half their mean (so one does). The
    kernel's rule (`sweeps.h`, orthonormalise)."""
    tol = torch.finfo(X.dtype).eps ** 0.5
    H = X.shape[-1]
    E = torch.eye(H, dtype=X.dtype, device=X.device)  # (H, H) the unit vectors
    Q = torch.zeros_like(X)  # (N, m, H)
    for i in range(X.shape[1]):
        P = Q[:, :i]  # (N, i, H) the rows before
        y, cand = X[:, i : i + 1], E.expand(X.shape[0], -1, -1)  # (N, 1, H), (N, H, H)
        for _ in range(2):
            y = y - (y @ P.mT) @ P
            cand = cand - (cand @ P.mT) @ P
        r = y.norm(dim=-1)  # (N, 1)
        good = cand.square().sum(dim=-1) > (H - i) / (2 * H)  # (N, H)
        c = good.int().argmax(dim=-1)  # (N,) the first good unit vector
        e = cand[torch.arange(X.shape[0]), c].unsqueeze(1)  # (N, 1, H)
        dependent = (r <= tol * X[:, i].norm(dim=-1, keepdim=True)).unsqueeze(-1)  # (N, 1, 1)
        y = torch.where(dependent, e, y)
        Q[:, i : i + 1] = y / y.norm(dim=-1, keepdim=True)
    return Q


def _orthonormal(Z: Tensor) -> Tensor:
    """Orthonormal rows spanning the rows of each sequence's block: Z (..., m, B, H) ->
    (..., min(m, H), B, H), the span of every leading set of rows kept (QR). Blocks with a
    dependent row take `_gram_schmidt`'s vectors, as the kernel's loops do, instead of the
    QR's arbitrary completion."""
    A = Z.movedim(-3, -1)  # (..., B, H, m)
    Q, R = torch.linalg.qr(A)  # (..., B, H, p), (..., B, p, m), p = min(m, H)
    p = Q.shape[-1]
    tol = torch.finfo(Z.dtype).eps ** 0.5
    r = R.diagonal(dim1=-2, dim2=-1).abs()  # (..., B, p) each column's residual
    dependent = (r <= tol * A[..., :p].norm(dim=-2)).any(dim=-1)  # (..., B)
    if dependent.any():
        Q[dependent] = _gram_schmidt(A[dependent][..., :p].mT).mT
    return Q.movedim(-1, -3)


def gram_top_eigenvalue(Y: Tensor) -> Tensor:
    """Largest eigenvalue of each Gram Y Y^T, Y (..., m, H): (...,) float64, the squared
    largest singular value of Y. In the compiled kernel on the CPU (the Gram in double, a
    Householder reduction and Laguerre's method, 1e-12 relative), else eigvalsh (one LAPACK
    call per matrix: ~10x slower for thousands of small ones)."""
    if Y.device.type == "cpu" and Y.dtype in kernel.DTYPES and Y.numel() and kernel.available():
        m, H = Y.shape[-2:]
        return kernel.gram_max_eigenvalue(Y.reshape(-1, m, H).contiguous()).view(Y.shape[:-2])
    Y = Y.to(F64)
    return torch.linalg.eigvalsh(Y @ Y.mT)[..., -1]


def basis_lags(T: int) -> list[int]:
    """The lags the bases of product_norms_estimate settle at: T - 1, then BASIS_SHORTEST
    times powers of BASIS_GROWTH up to (T - 1) / 2, longest first (T = 100: 99, 16, 4)."""
    lags = [T - 1]
    L = BASIS_SHORTEST
    while 2 * L <= lags[0]:
        lags.insert(1, L)
        L *= BASIS_GROWTH
    return lags


def _kernel_runs(steps: RNNSteps | LSTMSteps) -> bool:
    """True if the sweeps of product_norms_estimate run in the kernel (`kernel.supports` the
    factors: CPU float32/float64, the kernel available)."""
    return kernel.supports(steps.f if isinstance(steps, LSTMSteps) else steps.a)


def _factors(
    steps: RNNSteps | LSTMSteps,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """The kernel sweeps' factors (a, W, f, beta): the RNN's (a, W, None, None), the LSTM's
    (alpha, U, f, beta)."""
    if isinstance(steps, LSTMSteps):
        f, beta = steps.f.contiguous(), steps.beta.contiguous()
        return steps.alpha, steps.U.contiguous(), f, beta
    return steps.a.contiguous(), steps.W.contiguous(), None, None


def _forward_bases(steps: RNNSteps | LSTMSteps, T: int, k: int, gen: torch.Generator) -> Tensor:
    """Orthonormal (n k, B, H) for the n = len(basis_lags(T)) bases, longest first: basis j
    is k random vectors carried through the last basis_lags(T)[j] + 1 steps (subspace
    iteration, QR every QR_EVERY steps and at the end), so it holds the top left singular
    directions of the products of that length and, as they settle, longer ones. The joint
    QR at the end keeps each leading set of bases' span. A sequence's padding steps
    (variable lengths: the first T - lengths[b] indices) leave its bases as they are."""
    B, H = steps.dim
    lags = basis_lags(T)
    Z = torch.randn(len(lags), k, B, H, generator=gen, dtype=steps.dtype)  # (n, k, B, H)
    return _carry_bases(steps, T, _orthonormal(Z), joint=True)  # (min(n k, H), B, H)


def _carry_bases(steps: RNNSteps | LSTMSteps, T: int, Z: Tensor, joint: bool) -> Tensor:
    """`_forward_bases`' loop: the orthonormal bases Z (n, k, B, H) carried through the
    steps, basis j from processing index T - 1 - basis_lags(T)[j], each re-orthonormalised
    every QR_EVERY steps and at the last; in the kernel (`sweeps.h`) where it runs. joint:
    the n k rows orthonormalised together (min(n k, H), B, H), else (n, k, B, H)."""
    B = Z.shape[2]
    lags = basis_lags(T)
    n_b = steps.lengths
    if _kernel_runs(steps):  # the same loop in C++
        first = None if n_b is None else (T - n_b).to(torch.int64).cpu().contiguous()  # (B,)
        starts = [T - 1 - L for L in lags]  # (n,) each basis's first index
        factors = _factors(steps)
        return kernel.sweep_forward(Z.contiguous(), *factors, starts, QR_EVERY, first, joint)
    Z = Z.clone()
    first = None if n_b is None else (T - n_b).to(Z.device).view(B, 1)  # (B, 1) first real index
    for s in range(T):  # processing index s: basis j runs from index T - 1 - lags[j]
        n = sum(1 for L in lags if s >= T - 1 - L)  # bases under way
        z = steps.jvp(s, Z[:n])  # (n, k, B, H)
        if first is not None:
            z = torch.where(s >= first, z, Z[:n])  # (n, k, B, H) padding: unchanged
        Z[:n] = _orthonormal(z) if (T - 1 - s) % QR_EVERY == 0 else z
    return _orthonormal(Z.flatten(0, 1)) if joint else Z


def _lag_groups(T: int, k: int, m: int) -> list[tuple[int, int, int]]:
    """(first, last, rows): lags first .. last are reached by the bases of rows 0 .. rows-1
    of the (m, B, H) block of `_forward_bases` (basis j reaches lags 1 .. basis_lags[j]; m
    is n k, or H where n k rows would exceed it)."""
    lags = basis_lags(T)
    groups, first = [], 1
    for j in range(len(lags) - 1, -1, -1):  # shortest basis first
        last = T - 1 if j == 0 else min(T - 1, lags[j] * BASIS_REACH)
        if last >= first:
            groups.append((first, last, min(k * (j + 1), m)))
            first = last + 1
    return groups


def _sweep_back(
    steps: RNNSteps | LSTMSteps, T: int, Q: Tensor, k: int
) -> tuple[list[Tensor], Tensor]:
    """P_l^T Q_l for l = 1 .. T-1, Q_l the rows of Q (n k, B, H) whose bases reach lag l: a
    block (last - first + 1, B, rows, H) per `_lag_groups` group, P_l^T Q_l = its row l -
    first times exp(log_scale[l-1]) per sequence (log_scale float64 (T-1, B)), so nothing
    under/overflows."""
    B, H = steps.dim
    groups = _lag_groups(T, k, Q.shape[0])
    if _kernel_runs(steps):  # the same loop in C++ (`sweeps.h`)
        Y, scale = kernel.sweep_back(Q.contiguous(), *_factors(steps), groups)
        return Y, scale.to(F64).log().cumsum(dim=0)
    Y = [Q.new_empty(last - first + 1, B, rows, H) for first, last, rows in groups]
    scale = Q.new_empty(T - 1, B)  # (T-1, B) each step's normalising factor
    tiny = torch.finfo(Q.dtype).tiny
    y = Q
    for (first, last, rows), Y_g in zip(groups, Y, strict=True):
        y = y[:rows]
        for lag in range(first, last + 1):
            y = steps.vjp(T - lag, y)  # (rows, B, H)
            n = torch.linalg.vector_norm(y, dim=(0, 2), out=scale[lag - 1])  # (B,)
            y = y / n.clamp_min(tiny).unsqueeze(1)
            Y_g[lag - first] = y.transpose(0, 1)  # (B, rows, H)
    return Y, scale.to(F64).log().cumsum(dim=0)


def product_norms_estimate(
    steps: RNNSteps | LSTMSteps,
    T: int,
    columns: int = SWEEP_COLUMNS,
    iterations: int = LANCZOS_ITERATIONS,
    seed: int = 0,
) -> np.ndarray:
    """As product_norms_exact, from matrix-vector products only: O(T B H^2 columns).

    One forward pass builds orthonormal bases Q of the left ends (k = columns random
    vectors per basis, carried through the last 4, 16, 64, .. and all steps:
    `basis_lags`, `_forward_bases`); one backward pass gives P_l^T Q for every lag l,
    with the bases that reach l, and ||P_l^T Q||_2 (the largest eigenvalue of each lag's
    Gram, `gram_top_eigenvalue`) is the estimate, exact once the basis spans R^H. Lags
    1 .. SHORT_LAGS, which no basis has settled at, also get `iterations` Lanczos steps;
    each keeps the larger of its two lower bounds. With variable lengths a sequence's lags
    beyond its own (zero products) are left out of the mean.
    """
    out = np.ones(T)
    if T == 1:
        return out
    real = steps.real  # (T, B): sequence b has lag l; None: all do
    B, H = steps.dim
    k = min(columns, H)
    gen = torch.Generator().manual_seed(seed)
    Q = _forward_bases(steps, T, k, gen)  # (n k, B, H)
    Y, log_scale = _sweep_back(steps, T, Q, k)  # [(lags, B, rows, H)], (T-1, B)
    lam = torch.cat([gram_top_eigenvalue(Y_g) for Y_g in Y])  # (T-1, B) of each Gram
    log_sigma = log_scale + 0.5 * lam.clamp_min(torch.finfo(F64).tiny).log()  # (T-1, B)
    short = min(SHORT_LAGS, T - 1)
    if short and Q.shape[0] < H:  # else the bases span R^H: the Gram's estimate is exact
        s = short_lag_norms(steps, T, short, iterations).to(F64)  # (short, B)
        log_sigma[:short] = torch.maximum(log_sigma[:short], s.log())
    out[1:] = batch_mean(log_sigma.exp(), None if real is None else real[1:]).cpu().numpy()
    return out
