"""`vanishing profile`: the gradient flow of one freshly initialised model, no training.

One RNN or LSTM (float64) reads an adding-problem batch with a loss at the last step k = T;
its recorded gradients give the per-lag table and figure (a). `rec_scale` multiplies W_rec
first, to push gamma * lambda_1 above 1 and show the exploding regime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.table import Table
from torch import nn

from vanishing import gradflow, report
from vanishing.demo import FRACTION, flush_denormal, make_run_dir, recorded_pass
from vanishing.gradflow import LagProfile
from vanishing.layers import LSTM, RNN
from vanishing.rnn_bptt import activation_grad_bound
from vanishing.tasks import adding_problem
from vanishing.train import SequenceRegressor


def lags_to_show(T: int, rows: int = 10) -> Sequence[int]:
    """About `rows` lags from 0 to T - 1, always including both ends."""
    return sorted({*range(0, T, max(1, T // rows)), T - 1})


@dataclass
class ProfileResult:
    """`vanishing profile`: one untrained model's lag profile and where its figure went."""

    name: str
    profile: LagProfile
    lambda_1: float
    gamma: float | None
    figure: Path


def run_profile(
    model: str = "rnn",
    nonlinearity: str = "tanh",
    T: int = 100,
    hidden: int = 64,
    rec_scale: float = 1.0,
    forget_bias: float = 0.0,
    batch: int = 16,
    seed: int = 0,
    out: Path = Path("runs"),
) -> ProfileResult:
    """Measure gradient flow of one freshly initialised model on an adding-problem batch.

    W_rec (weight_hh) is multiplied by rec_scale first (gradflow.scale_recurrent_), e.g. to
    push lambda_1 above 1/gamma and show the exploding regime. Float64; loss at step k = T.
    Writes figure (a) for that model to out/profile-<time>/a_gradient_vs_lag.png.
    """
    if model not in ("rnn", "lstm"):
        raise ValueError(f"unknown model {model!r}; expected rnn or lstm")
    if nonlinearity not in ("sigmoid", "tanh", "relu"):
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; expected sigmoid, tanh or relu")
    for name, value, low in (("T", T, 2), ("hidden", hidden, 1), ("batch", batch, 1)):
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if not np.isfinite(rec_scale):
        raise ValueError(f"rec-scale must be a finite number, got {rec_scale}")
    torch.manual_seed(seed)
    if model == "lstm":
        layer: nn.Module = LSTM(2, hidden, forget_bias=forget_bias, dtype=torch.float64)
        name = f"LSTM (forget_bias={forget_bias:g})"
    else:
        layer = RNN(2, hidden, nonlinearity=nonlinearity, dtype=torch.float64)
        name = f"RNN ({nonlinearity})"
    if rec_scale != 1.0:
        gradflow.scale_recurrent_(layer, rec_scale)
        name += f", W_rec x {rec_scale:g}"
    regressor = SequenceRegressor(layer)
    x, y = adding_problem(batch, T, torch.Generator().manual_seed(seed + 7919), torch.float64)
    with flush_denormal():
        layer_copy, trace = recorded_pass(regressor, x, y)
        profile = gradflow.lag_profile(layer_copy, trace, fraction=FRACTION)
    lambda_1 = float(torch.linalg.matrix_norm(layer.weight_hh_l0.detach(), ord=2))
    gamma = None if model == "lstm" else activation_grad_bound(nonlinearity)
    run_dir = make_run_dir(Path(out), prefix="profile")
    fig = report.plot_lag_profiles({f"{name}, untrained, T = {T}": {name: profile}}, FRACTION)
    figure = report.save_figure(fig, run_dir / "a_gradient_vs_lag.png")
    return ProfileResult(name, profile, lambda_1, gamma, figure)


def profile_table(result: ProfileResult) -> Table:
    """Per-lag table of a ProfileResult: gradient norms, Jacobian-product norm, bound."""
    p = result.profile
    T = len(p.dh_norm)
    table = Table(title=f"{result.name}: gradient flow by lag k - t (loss at k = {T})")
    table.add_column("lag k-t", justify="right")
    table.add_column("||dE/dh_t||", justify="right")
    if p.dc_norm is not None:
        table.add_column("||dE/dc_t||", justify="right")
    table.add_column("relative to lag 0", justify="right")
    table.add_column("||prod Jacobians||", justify="right")
    if p.bound is not None:
        table.add_column("bound (gamma lambda_1)^lag", justify="right")
    for lag in lags_to_show(T):
        row = [str(lag), f"{p.dh_norm[lag]:.3e}"]
        if p.dc_norm is not None:
            row.append(f"{p.dc_norm[lag]:.3e}")
        row += [f"{p.ratio_at(lag):.3e}", f"{p.jacobian_norm[lag]:.3e}"]
        if p.bound is not None:
            row.append(f"{p.bound[lag]:.3e}")
        table.add_row(*row)
    return table
