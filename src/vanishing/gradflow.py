"""Gradient flow through time: per-lag gradient norms, Jacobian products, bounds, LSTM terms.

Everything here reads one `Trace` (one layer and direction of a recorded forward and backward
pass, see `vanishing.trace`) and the layer's weights; nothing runs another backward pass.
Computations are in float64 whatever the layer's dtype; results are numpy float64 arrays.

Notation (docs/gradflow.md, ../shared/reference/equations.md). Steps are numbered in the
order the layer processes them, s = 1 .. T (time order for the forward direction, reversed
time for the reverse one); k = T is the last step and the "lag" of step t is k - t, so
index 0 of a by-lag array is lag 0 (t = k) and index T - 1 is lag T - 1 (t = 1).

- RNN, article eq. (2):  dh_t/dh_{t-1} = diag(act'(z_t)) W_rec.
- LSTM, article eq. (6): dc_t/dc_{t-1} = A_t + B_t + C_t + D_t with h_{t-1} = o_{t-1} tanh(c_{t-1}),

      A_t = diag(c_{t-1} sigma'(z_f,t)) U_f diag(o_{t-1} tanh'(c_{t-1}))
      B_t = diag(f_t)
      C_t = diag(g_t sigma'(z_i,t))     U_i diag(o_{t-1} tanh'(c_{t-1}))
      D_t = diag(i_t tanh'(z_g,t))      U_g diag(o_{t-1} tanh'(c_{t-1}))   [the article: sigma']

  U_i, U_f, U_g are the blocks of weight_hh (gate order i, f, g, o). At step 1 the initial
  state h_0 does not depend on c_0, so A_1 = C_1 = D_1 = 0 and dc_1/dc_0 = B_1.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vanishing.rnn_bptt import activation_grad, activation_grad_bound
from vanishing.trace import Trace

F64 = torch.float64


# ----------------------------------------------------------------------------- results


@dataclass
class LagProfile:
    """Gradient flow of one layer and direction by lag k - t (index 0 = lag 0), k = T.

    dh_norm[l]: batch mean of ||dE_k/dh_{k-l}||_2; dc_norm[l] the same for dE_k/dc_{k-l}
    (LSTM; None for the RNN). jacobian_norm[l]: batch mean of the spectral norm of
    prod_{j=k-l+1..k} dc_j/dc_{j-1} (RNN: dh_j/dh_{j-1}); 1 at lag 0. bound[l]: the RNN's
    (gamma lambda_1)^l (None for the LSTM). horizon: gradient_horizon of dh_norm (RNN) or
    dc_norm (LSTM). method: how jacobian_norm was computed, 'exact', 'power' or 'skipped'.
    """

    dh_norm: np.ndarray  # (T,)
    dc_norm: np.ndarray | None  # (T,)
    jacobian_norm: np.ndarray  # (T,)
    bound: np.ndarray | None  # (T,)
    horizon: int
    method: str = "exact"

    @property
    def norm(self) -> np.ndarray:
        """The curve the horizon is read from: dc_norm for the LSTM, dh_norm for the RNN."""
        return self.dh_norm if self.dc_norm is None else self.dc_norm

    def ratio_at(self, lag: int) -> float:
        """norm[lag] / norm[0] of `norm` (dc for the LSTM, dh for the RNN)."""
        n = self.norm
        if not 0 <= lag < len(n):
            raise ValueError(f"lag must be in [0, {len(n) - 1}], got {lag}")
        return float(n[lag] / n[0])


@dataclass
class LSTMTerms:
    """The four terms of the LSTM's dc_t/dc_{t-1} = A_t + B_t + C_t + D_t per step t = 1 .. T.

    A, B, C, D, total: (T,) batch mean of the spectral norm of each term and of their sum;
    forget_mean: (T,) mean of f_t over batch and units; forget: every f_t value, flattened.
    """

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    D: np.ndarray
    total: np.ndarray
    forget_mean: np.ndarray
    forget: np.ndarray


# ----------------------------------------------------------------------------- helpers


def _is_lstm(layer: nn.Module) -> bool:
    return getattr(layer, "mode", None) == "LSTM"


def _weight_hh(layer: nn.Module, trace: Trace) -> Tensor:
    """weight_hh of the trace's layer and direction, detached, float64: (G*H, H)."""
    name = "weight_hh_" + trace.name
    W = getattr(layer, name, None)
    if W is None:
        raise ValueError(f"{type(layer).__name__} has no parameter {name} for this trace")
    return W.detach().to(F64)


def _processing(x: Tensor, direction: int) -> Tensor:
    """A (T, ...) tensor in time order, put in processing order (reversed for direction 1)."""
    return x.detach().to(F64).flip(0) if direction else x.detach().to(F64)


def _sigmoid_grad_from_tanh(g: Tensor) -> Tensor:
    """sigma'(z) from g = tanh(z): r / (1 + r)^2 with r = e^{-|z|} = sqrt((1 - |g|) / (1 + |g|))."""
    a = g.abs()
    r = torch.sqrt((1.0 - a) / (1.0 + a))
    return r / (1.0 + r) ** 2


@dataclass
class _RNNSteps:
    """Per-step factors of J_s = dh_s/dh_{s-1} = diag(a_s) W, processing order."""

    a: Tensor  # (T, B, H) act'(z_s)
    W: Tensor  # (H, H) W_rec

    def jacobian(self, s: int) -> Tensor:
        return self.a[s].unsqueeze(2) * self.W  # (B, H, H)

    def jvp(self, s: int, y: Tensor) -> Tensor:
        return self.a[s] * (y @ self.W.t())  # (..., B, H) J_s y

    def vjp(self, s: int, z: Tensor) -> Tensor:
        return (self.a[s] * z) @ self.W  # (..., B, H) J_s^T z


@dataclass
class _LSTMSteps:
    """Per-step factors of J_s = dc_s/dc_{s-1} = diag(f_s) + sum_gate diag(alpha) U diag(beta).

    alpha[:, :, 0..2] are the left factors of C, A, D (gates i, f, g), beta the right factor.
    """

    f: Tensor  # (T, B, H) f_s
    alpha: Tensor  # (T, B, 3, H) [g sigma'(z_i), c_{s-1} sigma'(z_f), i tanh'(z_g)]
    beta: Tensor  # (T, B, H) o_{s-1} tanh'(c_{s-1}), 0 at s = 1
    U: Tensor  # (3H, H) [U_i; U_f; U_g]

    def terms(self, s: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """A_s, B_s, C_s, D_s, each (B, H, H)."""
        H = self.f.shape[2]
        U = self.U.view(3, H, H)  # (3, H, H)
        # (B, 3, H, H) diag(alpha) U diag(beta) for the gates i, f, g
        M = self.alpha[s].unsqueeze(3) * U * self.beta[s][:, None, None, :]
        B_s = torch.diag_embed(self.f[s])  # (B, H, H)
        return M[:, 1], B_s, M[:, 0], M[:, 2]

    def jacobian(self, s: int) -> Tensor:
        H = self.f.shape[2]
        U = self.U.view(3, H, H)  # (3, H, H)
        M = torch.einsum("bgi,gij->bij", self.alpha[s], U)  # (B, H, H) sum_gate diag(alpha) U
        return M * self.beta[s].unsqueeze(1) + torch.diag_embed(self.f[s])  # (B, H, H)

    def jvp(self, s: int, y: Tensor) -> Tensor:
        H = self.f.shape[2]
        u = ((self.beta[s] * y) @ self.U.t()).unflatten(-1, (3, H))  # (..., B, 3, H)
        return self.f[s] * y + (self.alpha[s] * u).sum(-2)  # (..., B, H) J_s y

    def vjp(self, s: int, z: Tensor) -> Tensor:
        w = (self.alpha[s] * z.unsqueeze(-2)).flatten(-2)  # (..., B, 3H)
        return self.f[s] * z + self.beta[s] * (w @ self.U)  # (..., B, H) J_s^T z


def _lstm_steps(layer: nn.Module, trace: Trace, article_D: bool = False) -> _LSTMSteps:
    if trace.f is None:
        raise ValueError("this trace has no gates: expected an LSTM trace")
    d = trace.direction
    i, f, g, o, c = (_processing(x, d) for x in (trace.i, trace.f, trace.g, trace.o, trace.c))
    c0 = trace.c0.detach().to(F64).unsqueeze(0)  # (1, B, H)
    c_prev = torch.cat((c0, c[:-1]))  # (T, B, H) c_{s-1}
    tanh_c_prev = torch.tanh(c[:-1])  # (T-1, B, H)
    beta = torch.zeros_like(c)  # (T, B, H); 0 at s = 1: h_0 does not depend on c_0
    beta[1:] = o[:-1] * (1.0 - tanh_c_prev * tanh_c_prev)
    g_grad = _sigmoid_grad_from_tanh(g) if article_D else 1.0 - g * g  # (T, B, H)
    alpha = torch.stack((g * i * (1.0 - i), c_prev * f * (1.0 - f), i * g_grad), dim=2)
    H = c.shape[2]
    U = _weight_hh(layer, trace)[: 3 * H]  # (3H, H)
    return _LSTMSteps(f=f, alpha=alpha, beta=beta, U=U)


def _rnn_steps(layer: nn.Module, trace: Trace) -> _RNNSteps:
    h = _processing(trace.h, trace.direction)  # (T, B, H)
    return _RNNSteps(a=activation_grad(h, layer.nonlinearity), W=_weight_hh(layer, trace))


def _spectral_norm(M: Tensor) -> Tensor:
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


def _check_trace(layer: nn.Module, trace: Trace) -> None:
    if not isinstance(trace, Trace):
        raise TypeError(f"trace must be a vanishing.Trace, got {type(trace).__name__}")
    if _is_lstm(layer) != (trace.c is not None):
        raise ValueError(
            f"the trace ({'LSTM' if trace.c is not None else 'RNN'}) does not belong to "
            f"this {type(layer).__name__} layer"
        )


# ----------------------------------------------------------------------------- products


def _product_norms_exact(steps: _RNNSteps | _LSTMSteps, T: int) -> np.ndarray:
    """(T,) batch mean of ||J_T J_{T-1} .. J_{T-l+1}||_2 for l = 0 .. T-1, forming each J."""
    out = np.ones(T)
    P: Tensor | None = None  # (B, H, H) product of the last l step Jacobians
    for lag in range(1, T):
        J = steps.jacobian(T - lag)  # (B, H, H) processing index T - lag is step T - lag + 1
        P = J if P is None else P @ J
        out[lag] = _spectral_norm(P).mean().item()
    return out


def _product_norms_power(
    steps: _RNNSteps | _LSTMSteps, T: int, B: int, H: int, iterations: int, seed: int = 0
) -> np.ndarray:
    """As _product_norms_exact, by power iteration on P_l^T P_l with JVPs and VJPs.

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


# ----------------------------------------------------------------------------- public API


def gradient_horizon(norms: np.ndarray, fraction: float = 1e-3) -> int:
    """Largest lag l with norms[l] >= fraction * norms[0]; 0 if norms[0] is 0 or not finite."""
    n = np.asarray(norms, dtype=np.float64)
    if n.ndim != 1 or n.size == 0:
        raise ValueError(f"norms must be a non-empty 1-d array, got shape {n.shape}")
    if not fraction > 0:
        raise ValueError(f"fraction must be > 0, got {fraction!r}")
    if not (np.isfinite(n[0]) and n[0] > 0):
        return 0
    above = np.flatnonzero(n >= fraction * n[0])
    return int(above[-1])


def rnn_bound(W_hh: Tensor, nonlinearity: str, max_lag: int) -> np.ndarray:
    """(gamma lambda_1)^l for l = 0 .. max_lag: shape (max_lag + 1,).

    lambda_1 = largest singular value of W_hh; gamma = sup |act'| = 1/4 (sigmoid), 1 (tanh,
    relu). Bounds ||prod_{j=t+1..k} dh_j/dh_{j-1}||_2 for k - t = l (Pascanu et al. 2013).
    """
    if max_lag < 0:
        raise ValueError(f"max_lag must be >= 0, got {max_lag}")
    if nonlinearity not in ("tanh", "relu", "sigmoid"):
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}")
    lambda_1 = _spectral_norm(W_hh.detach().to(F64)).item()
    with np.errstate(over="ignore"):
        return np.power(activation_grad_bound(nonlinearity) * lambda_1, np.arange(max_lag + 1.0))


def lag_profile(
    layer: nn.Module,
    trace: Trace,
    fraction: float = 1e-3,
    exact_max_hidden: int = 64,
    iterations: int = 20,
    *,
    jacobian: bool = True,
) -> LagProfile:
    """Per-lag gradient norms and Jacobian-product norms of one recorded layer and direction.

    The trace must come from a forward and a backward pass whose loss E_k depends on the
    LAST step k = T only (e.g. a read-out of h_T): then trace.dh[t] = dE_k/dh_t. (With a
    loss at every step, dh_norm is the norm of the summed gradient sum_k dE_k/dh_t.) No
    further backward pass is run. Jacobian products: exact (H x H matrices, spectral norm)
    for H <= exact_max_hidden, else `iterations` power-iteration steps on P^T P using
    Jacobian-vector and vector-Jacobian products (a lower bound that converges from below).
    jacobian=False skips them (jacobian_norm is NaN beyond lag 0, method 'skipped').
    For the LSTM the product is of dc_j/dc_{j-1} = A_j + B_j + C_j + D_j (eq. 6), which holds
    o_{j-1} fixed; dc_norm counts every path, including the one through the output gate.
    """
    _check_trace(layer, trace)
    if trace.dh is None:
        raise ValueError("trace.dh is None: run backward through the recorded forward first")
    lstm = _is_lstm(layer)
    d = trace.direction
    dh = _processing(trace.dh, d)  # (T, B, H)
    T, B, H = dh.shape
    dh_norm = dh.norm(dim=2).mean(dim=1).flip(0).numpy()  # (T,) by lag
    dc_norm = None
    if lstm:
        dc_norm = _processing(trace.dc, d).norm(dim=2).mean(dim=1).flip(0).numpy()  # (T,)
    steps = _lstm_steps(layer, trace) if lstm else _rnn_steps(layer, trace)
    if not jacobian:
        jac, method = np.full(T, np.nan), "skipped"
        jac[0] = 1.0
    elif H <= exact_max_hidden:
        jac, method = _product_norms_exact(steps, T), "exact"
    else:
        jac, method = _product_norms_power(steps, T, B, H, iterations), "power"
    bound = None if lstm else rnn_bound(steps.W, layer.nonlinearity, T - 1)
    horizon = gradient_horizon(dh_norm if dc_norm is None else dc_norm, fraction)
    return LagProfile(dh_norm, dc_norm, jac, bound, horizon, method)


def lstm_jacobians(
    layer: nn.Module, trace: Trace, article_D: bool = False
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A, B, C, D of dc_t/dc_{t-1} = A_t + B_t + C_t + D_t, each (T, B, H, H) float64.

    Row [t-1, b] is step t (processing order) of sequence b; step 1's A, C, D are 0.
    article_D=True uses the article's sigma'(z_g) in D_t instead of tanh'(z_g) (wrong).
    Memory: 4 T B H^2 floats; use lstm_terms for the norms alone.
    """
    _check_trace(layer, trace)
    if not _is_lstm(layer):
        raise ValueError("lstm_jacobians needs an LSTM layer")
    steps = _lstm_steps(layer, trace, article_D)
    T = steps.f.shape[0]
    terms = [steps.terms(s) for s in range(T)]
    return tuple(torch.stack(x) for x in zip(*terms, strict=True))  # 4 x (T, B, H, H)


def lstm_terms(layer: nn.Module, trace: Trace, article_D: bool = False) -> LSTMTerms:
    """Per-step batch-mean spectral norms of A_t, B_t, C_t, D_t and A_t + B_t + C_t + D_t.

    Steps in processing order (time order for the forward direction). ||B_t|| = max f_t.
    article_D=True uses the article's sigma'(z_g) in D_t instead of tanh'(z_g) (wrong).
    """
    _check_trace(layer, trace)
    if not _is_lstm(layer):
        raise ValueError("lstm_terms needs an LSTM layer")
    steps = _lstm_steps(layer, trace, article_D)
    T = steps.f.shape[0]
    norms = np.empty((5, T))
    for s in range(T):
        A, B_s, C, D = steps.terms(s)  # (B, H, H) each
        M = torch.stack((A, C, D, A + B_s + C + D))  # (4, B, H, H)
        a, c, d, total = _spectral_norm(M).mean(dim=1).tolist()
        norms[:, s] = a, steps.f[s].amax(dim=1).mean().item(), c, d, total
    f = steps.f  # (T, B, H)
    return LSTMTerms(
        A=norms[0],
        B=norms[1],
        C=norms[2],
        D=norms[3],
        total=norms[4],
        forget_mean=f.mean(dim=(1, 2)).numpy(),
        forget=f.flatten().numpy(),
    )


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, threshold: float) -> float:
    """Pascanu et al. 2013, Algorithm 1: g = all gradients; if ||g|| >= threshold,
    g <- threshold * g / ||g||. Returns ||g|| (2-norm over all parameters) before clipping.

    threshold must be a finite number > 0 (a negative one would flip the gradient, cf.
    PyTorch issue 31367). A non-finite ||g|| is returned as is; inf zeroes finite entries.
    """
    if (
        not isinstance(threshold, numbers.Real)
        or isinstance(threshold, bool)
        or not math.isfinite(threshold)
        or not threshold > 0
    ):
        raise ValueError(f"threshold must be a finite number > 0, got {threshold!r}")
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norm = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g.detach().to(F64)) for g in grads])
    ).item()
    if norm >= threshold:
        scale = threshold / norm
        with torch.no_grad():
            for g in grads:
                g.mul_(scale)
    return norm


def scale_recurrent_(layer: nn.Module, rec_scale: float) -> None:
    """Multiply every weight_hh* parameter of layer by rec_scale in place (lambda_1 scales too).

    With lambda_1 > 1/gamma the RNN's bound (gamma lambda_1)^lag grows and gradients can explode.
    """
    if not isinstance(rec_scale, numbers.Real) or not math.isfinite(rec_scale):
        raise ValueError(f"rec_scale must be a finite number, got {rec_scale!r}")
    weights = [
        p for name, p in layer.named_parameters() if name.split(".")[-1].startswith("weight_hh")
    ]
    if not weights:
        raise ValueError(f"{type(layer).__name__} has no weight_hh parameter to scale")
    with torch.no_grad():
        for W in weights:
            W.mul_(rec_scale)
