"""LSTM gate-bias initialisations: forget bias (Jozefowicz et al. 2015), chrono (Tallec &
Ollivier 2018). Both work on vanishing.LSTM and torch.nn.LSTM (same parameter names and gate
order i, f, g, o); the effective bias of a gate is bias_ih + bias_hh.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def lstm_biases(lstm: nn.Module) -> list[tuple[Tensor, Tensor]]:
    """(bias_ih, bias_hh) of every layer and direction of an LSTM (vanishing or torch.nn)."""
    names = [n for n, _ in lstm.named_parameters() if n.split(".")[-1].startswith("bias_ih")]
    if not names:
        raise ValueError(f"{type(lstm).__name__} has no bias_ih parameter (bias=False?)")
    params = dict(lstm.named_parameters())
    return [(params[n], params[n.replace("bias_ih", "bias_hh")]) for n in names]


def forget_bias_(lstm: nn.Module, value: float) -> None:
    """Add `value` to the forget-gate block of every bias_ih (vanishing.LSTM's forget_bias)."""
    if not math.isfinite(value):
        raise ValueError(f"forget bias must be a finite number, got {value!r}")
    with torch.no_grad():
        for bias_ih, _ in lstm_biases(lstm):
            H = bias_ih.shape[0] // 4
            bias_ih[H : 2 * H] += value


def chrono_(lstm: nn.Module, T_max: int, generator: torch.Generator | None = None) -> None:
    """Chrono initialisation: b_f = log(u), u ~ U[1, T_max - 1], b_i = -b_f, per unit.

    Written into bias_ih with bias_hh's forget and input blocks set to 0, so the effective
    biases are exactly b_f and b_i. Forget gates then start with time constants spread up to
    the longest lag T_max (Tallec & Ollivier 2018).
    """
    if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 3:
        raise ValueError(f"chrono needs T_max an int >= 3 (u ~ U[1, T_max - 1]), got {T_max!r}")
    with torch.no_grad():
        for bias_ih, bias_hh in lstm_biases(lstm):
            H = bias_ih.shape[0] // 4
            u = torch.rand(H, generator=generator, dtype=torch.float64)  # (H,) U[0, 1]
            b_f = torch.log(1.0 + (T_max - 2) * u).to(bias_ih.dtype)  # (H,) log U[1, T_max-1]
            bias_ih[H : 2 * H] = b_f
            bias_ih[:H] = -b_f
            bias_hh[: 2 * H] = 0.0
