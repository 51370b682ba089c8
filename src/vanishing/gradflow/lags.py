"""Gradient flow by time lag: per-lag gradient norms, Jacobian-product norms, bound, horizon.

Reads one `Trace` (one layer and direction of a recorded forward and backward pass) and the
layer's weights; nothing runs another backward pass. Float64 whatever the layer's dtype;
results are numpy float64 arrays. The loss is E_k at the last processed step k = T; the
"lag" of step t is k - t, so index 0 of a by-lag array is lag 0 (t = k) and index T - 1 is
lag T - 1 (t = 1). Step Jacobians: `steps.py`.

Variable lengths (a trace from a PackedSequence): every sequence's lag 0 is its own last
processed step, k = lengths[b]; the mean at lag l is over the sequences with more than l
steps (`LagProfile.count`), so each sequence contributes its own steps and nothing else.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vanishing.gradflow.spectral import (
    LANCZOS_ITERATIONS,
    SWEEP_COLUMNS,
    check_positive,
    product_norms_estimate,
    product_norms_exact,
    spectral_norm,
)
from vanishing.gradflow.steps import (
    F64,
    LSTMSteps,
    RNNSteps,
    batch_mean,
    check_steps,
    check_trace,
    end_aligned,
    processing,
    real_steps,
    trace_steps,
    weight_hh,
)
from vanishing.nn import Trace
from vanishing.nn.activations import activation_grad_bound
from vanishing.nn.naming import is_lstm


@dataclass
class LagProfile:
    """Gradient flow of one layer and direction by lag k - t (index 0 = lag 0), k = T.

    dh_norm[l]: batch mean of ||dE_k/dh_{k-l}||_2; dc_norm[l] the same for dE_k/dc_{k-l}
    (LSTM; None for the RNN). jacobian_norm[l]: batch mean of the spectral norm of
    prod_{j=k-l+1..k} dc_j/dc_{j-1} (RNN: dh_j/dh_{j-1}); 1 at lag 0. bound[l]: the RNN's
    (gamma lambda_1)^l (None for the LSTM). horizon: gradient_horizon of dh_norm (RNN) or
    dc_norm (LSTM). method: how jacobian_norm was computed, 'exact', 'estimate' (lower
    bounds from matrix-vector products, `spectral.product_norms_estimate`) or 'skipped'.

    Variable lengths (trace.lengths): lag l of sequence b counts back from its own last
    step k_b = lengths[b], and every batch mean at lag l is over the count[l] sequences
    with more than l steps (NaN where count[l] is 0). count (T,): that number, B at every
    lag for equal lengths.
    """

    dh_norm: np.ndarray  # (T,)
    dc_norm: np.ndarray | None  # (T,)
    jacobian_norm: np.ndarray  # (T,)
    bound: np.ndarray | None  # (T,)
    horizon: int
    method: str = "exact"
    count: np.ndarray | None = None  # (T,) sequences with each lag

    @property
    def norm(self) -> np.ndarray:
        """The curve the horizon is read from: dc_norm for the LSTM, dh_norm for the RNN."""
        return self.dh_norm if self.dc_norm is None else self.dc_norm

    def ratio_at(self, lag: int) -> float:
        """norm[lag] / norm[0] of `norm` (dc for the LSTM, dh for the RNN)."""
        n = self.norm
        if isinstance(lag, bool) or not isinstance(lag, numbers.Integral) or not 0 <= lag < len(n):
            raise ValueError(f"lag must be an integer in [0, {len(n) - 1}], got {lag!r}")
        return float(n[lag] / n[0])


def check_fraction(fraction: object) -> None:
    """ValueError unless fraction is a real number in (0, 1] (the horizon's threshold)."""
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, numbers.Real)
        or not 0 < fraction <= 1
    ):
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")


def gradient_horizon(norms: np.ndarray, fraction: float = 1e-3) -> int:
    """Largest lag l with norms[l] >= fraction * norms[0]; 0 if norms[0] is 0 or not finite."""
    try:
        n = np.asarray(norms, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"norms must be a 1-d array of numbers, got {norms!r:.80}") from e
    if n.ndim != 1 or n.size == 0:
        raise ValueError(f"norms must be a non-empty 1-d array, got shape {n.shape}")
    check_fraction(fraction)
    if not (np.isfinite(n[0]) and n[0] > 0):
        return 0
    above = np.flatnonzero(n >= fraction * n[0])
    return int(above[-1])


def rnn_bound(W_hh: Tensor, nonlinearity: str, max_lag: int) -> np.ndarray:
    """(gamma lambda_1)^l for l = 0 .. max_lag: shape (max_lag + 1,).

    lambda_1 = largest singular value of W_hh; gamma = sup |act'| (`nn.activations`: 1/4
    sigmoid, 1 tanh and relu). Bounds ||prod_{j=t+1..k} dh_j/dh_{j-1}||_2 for k - t = l
    (Pascanu et al. 2013).
    """
    if not isinstance(W_hh, Tensor) or W_hh.dim() != 2 or W_hh.shape[0] != W_hh.shape[1]:
        got = tuple(W_hh.shape) if isinstance(W_hh, Tensor) else type(W_hh).__name__
        raise ValueError(f"W_hh must be a square (H, H) tensor, got {got}")
    if isinstance(max_lag, bool) or not isinstance(max_lag, numbers.Integral) or max_lag < 0:
        raise ValueError(f"max_lag must be an integer >= 0, got {max_lag!r}")
    gamma = activation_grad_bound(nonlinearity)
    lambda_1 = spectral_norm(W_hh.detach().to(F64)).item()
    with np.errstate(over="ignore"):
        return np.power(gamma * lambda_1, np.arange(max_lag + 1.0))


def norms_by_lag(grads: Tensor, direction: int, lengths: Tensor | None = None) -> np.ndarray:
    """(T,) batch mean of ||grads_t||_2 by lag (index 0 = the last processed step), float64.

    grads (T, B, H) in time order, as a Trace holds them; direction and lengths as the
    trace's (with lengths, lag l of sequence b is its own step lengths[b] - l, and the mean
    is over the sequences that have it).
    """
    norms = torch.linalg.vector_norm(grads.detach(), dim=2, dtype=F64)  # (T, B)
    if lengths is None:
        norms = norms.mean(dim=1)  # (T,)
        return (norms.flip(0) if direction == 0 else norms).cpu().numpy()
    T = norms.shape[0]
    by_lag = end_aligned(processing(norms, direction, F64, lengths), lengths).flip(0)  # (T, B)
    return batch_mean(by_lag, real_steps(lengths, T, norms.device)).cpu().numpy()


def lag_profile(
    layer: nn.Module,
    trace: Trace,
    fraction: float = 1e-3,
    *,
    jacobian: bool = True,
    exact: bool = False,
    columns: int = SWEEP_COLUMNS,
    iterations: int = LANCZOS_ITERATIONS,
    steps: RNNSteps | LSTMSteps | None = None,
) -> LagProfile:
    """Per-lag gradient norms and Jacobian-product norms of one recorded layer and direction.

    The trace must come from a forward and a backward pass whose loss E_k depends on the
    LAST step k = T only (e.g. a read-out of h_T): then trace.dh[t] = dE_k/dh_t. (With a
    loss at every step, dh_norm is the norm of the summed gradient sum_k dE_k/dh_t.) No
    further backward pass is run. Jacobian products: exact=True forms them (float64,
    O(T B H^3)); otherwise lower bounds from matrix-vector products in the trace's dtype
    (`spectral.product_norms_estimate`, `columns` and `iterations` set its accuracy,
    docs/gradflow.md). jacobian=False skips them (jacobian_norm is NaN beyond lag 0,
    method 'skipped') and reads nothing but the gradients (and, RNN, the current W_rec for
    the bound); with jacobian=True the trace must have been recorded with the layer's current
    weights, else nn.StaleTraceError (e.g. after an optimizer step).
    For the LSTM the product is of dc_j/dc_{j-1} = A_j + B_j + C_j + D_j (eq. 6), which holds
    o_{j-1} fixed; dc_norm counts every path, including the one through the output gate.
    steps: the trace's `steps.trace_steps`, if already built (float64 for exact=True).
    """
    check_trace(layer, trace, weights=jacobian)
    if trace.dh is None or (is_lstm(layer) and trace.dc is None):
        raise ValueError("trace.dh is None: run backward through the recorded forward first")
    check_fraction(fraction)
    check_positive("columns", columns)
    check_positive("iterations", iterations)
    if steps is not None:
        check_steps(steps, trace)
    lstm = is_lstm(layer)
    d, n = trace.direction, trace.lengths
    T, B = trace.dh.shape[:2]
    dh_norm = norms_by_lag(trace.dh, d, n)  # (T,)
    dc_norm = norms_by_lag(trace.dc, d, n) if lstm else None  # (T,)
    count = np.full(T, B) if n is None else real_steps(n, T).sum(dim=1).numpy()  # (T,)
    if not jacobian:
        jac, method = np.full(T, np.nan), "skipped"
        jac[0] = 1.0
    else:
        if steps is None:
            steps = trace_steps(layer, trace, F64 if exact else trace.h.dtype)
        if exact:
            jac, method = product_norms_exact(steps, T), "exact"
        else:
            jac, method = product_norms_estimate(steps, T, columns, iterations), "estimate"
    bound = None if lstm else rnn_bound(weight_hh(layer, trace), layer.nonlinearity, T - 1)
    horizon = gradient_horizon(dh_norm if dc_norm is None else dc_norm, fraction)
    return LagProfile(dh_norm, dc_norm, jac, bound, horizon, method, count)
