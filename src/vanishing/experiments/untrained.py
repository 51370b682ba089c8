"""One freshly initialised model's gradient flow, no training (the `vanishing profile` command).

One RNN or LSTM (float64) with a linear read-out of h_T reads an adding-problem batch; the
loss is at the last step k = T; `vanishing.profile` measures it. `rec_scale` multiplies W_rec
first, to push gamma * lambda_1 above 1 and show the exploding regime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vanishing.gradflow import DETAILS, LagProfile, profile, scale_recurrent_
from vanishing.gradflow.spectral import spectral_norm
from vanishing.nn import LSTM, RNN
from vanishing.nn.activations import activation_grad_bound
from vanishing.nn.activations import nonlinearity as lookup_nonlinearity
from vanishing.report import plot_lag_profiles, save_figure
from vanishing.tasks import adding_problem
from vanishing.train import SequenceModel, flush_denormal

FRACTION = 1e-3  # the gradient horizon's threshold, relative to lag 0


@dataclass
class UntrainedResult:
    """One untrained model's lag profile, lambda_1 of W_rec and (RNN) gamma."""

    name: str
    T: int
    profile: LagProfile
    lambda_1: float
    gamma: float | None

    def within_bound(self) -> bool | None:
        """Whether every measured Jacobian-product norm is <= the RNN bound (None: no bound
        or no products measured)."""
        p = self.profile
        if p.bound is None or p.method == "skipped":
            return None
        return bool((p.jacobian_norm <= p.bound * (1 + 1e-9)).all())


def measure_untrained(
    model: str = "rnn",
    nonlinearity: str = "tanh",
    T: int = 100,
    hidden: int = 64,
    rec_scale: float = 1.0,
    forget_bias: float = 0.0,
    batch: int = 16,
    seed: int = 0,
    detail: str = "terms",
) -> UntrainedResult:
    """Gradient flow of one freshly initialised model on an adding-problem batch (float64).

    W_rec (weight_hh) is multiplied by rec_scale first (gradflow.scale_recurrent_), e.g. to
    push lambda_1 above 1/gamma and show the exploding regime.
    """
    if model not in ("rnn", "lstm"):
        raise ValueError(f"unknown model {model!r}; expected rnn or lstm")
    lookup_nonlinearity(nonlinearity)
    for name, value, low in (("T", T, 2), ("hidden", hidden, 1), ("batch", batch, 1)):
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if not np.isfinite(rec_scale):
        raise ValueError(f"rec-scale must be a finite number, got {rec_scale}")
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {', '.join(DETAILS)}, got {detail!r}")
    torch.manual_seed(seed)
    if model == "lstm":
        layer: nn.Module = LSTM(2, hidden, forget_bias=forget_bias, dtype=torch.float64)
        name = f"LSTM (forget_bias={forget_bias:g})"
    else:
        layer = RNN(2, hidden, nonlinearity=nonlinearity, dtype=torch.float64)
        name = f"RNN ({nonlinearity})"
    if rec_scale != 1.0:
        scale_recurrent_(layer, rec_scale)
        name += f", W_rec x {rec_scale:g}"
    regressor = SequenceModel(layer)
    x, y = adding_problem(batch, T, torch.Generator().manual_seed(seed + 7919), torch.float64)

    def mse(y_hat: torch.Tensor) -> torch.Tensor:
        return torch.mean((y_hat - y) ** 2)

    with flush_denormal():
        (measured,) = profile(regressor, x, mse, FRACTION, detail=detail)["recurrent"]
    lambda_1 = spectral_norm(layer.weight_hh_l0.detach()).item()
    gamma = None if model == "lstm" else activation_grad_bound(nonlinearity)
    return UntrainedResult(name, T, measured.lags, lambda_1, gamma)


def draw_untrained(result: UntrainedResult, run_dir: Path) -> Path:
    """Figure (a) for the one model, as run_dir/a_gradient_vs_lag.png."""
    title = f"{result.name}, untrained, T = {result.T}"
    fig = plot_lag_profiles({title: {result.name: result.profile}}, FRACTION)
    return save_figure(fig, Path(run_dir) / "a_gradient_vs_lag.png")
