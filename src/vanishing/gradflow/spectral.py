"""Spectral norms of step Jacobians and of their products over lags (`steps.py`'s factors)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vanishing.gradflow.steps import F64, LSTMSteps, RNNSteps


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


def product_norms_exact(steps: RNNSteps | LSTMSteps, T: int) -> np.ndarray:
    """(T,) batch mean of ||J_T J_{T-1} .. J_{T-l+1}||_2 for l = 0 .. T-1, forming each J."""
    out = np.ones(T)
    P: Tensor | None = None  # (B, H, H) product of the last l step Jacobians
    for lag in range(1, T):
        J = steps.jacobian(T - lag)  # (B, H, H) processing index T - lag is step T - lag + 1
        P = J if P is None else P @ J
        out[lag] = spectral_norm(P).mean().item()
    return out


def product_norms_power(
    steps: RNNSteps | LSTMSteps, T: int, B: int, H: int, iterations: int, seed: int = 0
) -> np.ndarray:
    """As product_norms_exact, by power iteration on P_l^T P_l with JVPs and VJPs.

    All lags run at once: row l-1 of the (T-1, B, H) block is lag l's vector, which starts
    at step T - l and goes through the Jacobians of steps T - l + 1 .. T (and back).
    """
    out = np.ones(T)
    if T == 1:
        return out
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(T - 1, B, H, generator=gen, dtype=F64)  # (T-1, B, H)
    v = v / v.norm(dim=2, keepdim=True)

    def forward(v: Tensor) -> Tensor:  # P_l v_l for every lag l
        y = v.clone()  # (T-1, B, H)
        for s in range(1, T):  # processing index s = step s + 1; lags l >= T - s are active
            y[T - s - 1 :] = steps.jvp(s, y[T - s - 1 :])
        return y

    def backward(z: Tensor) -> Tensor:  # P_l^T z_l for every lag l
        z = z.clone()  # (T-1, B, H)
        for s in range(T - 1, 0, -1):
            z[T - s - 1 :] = steps.vjp(s, z[T - s - 1 :])
        return z

    for _ in range(iterations):
        u = backward(forward(v))  # (T-1, B, H) P^T P v
        n = u.norm(dim=2, keepdim=True)  # (T-1, B, 1)
        v = torch.where(n > 0, u / n, v)
    sigma = forward(v).norm(dim=2)  # (T-1, B) ||P v|| with ||v|| = 1
    out[1:] = sigma.mean(dim=1).numpy()
    return out
