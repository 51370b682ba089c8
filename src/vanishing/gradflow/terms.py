"""The LSTM's dc_t/dc_{t-1} = A_t + B_t + C_t + D_t (article eq. 6): the matrices and their norms.

Steps in processing order (time order for the forward direction); factors from `steps.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vanishing.gradflow.spectral import spectral_norm
from vanishing.gradflow.steps import check_trace, lstm_steps
from vanishing.nn import Trace
from vanishing.nn.naming import is_lstm


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


def _check_lstm(layer: nn.Module, trace: Trace, what: str) -> None:
    check_trace(layer, trace)
    if not is_lstm(layer):
        raise ValueError(f"{what} needs an LSTM layer")


def lstm_jacobians(
    layer: nn.Module, trace: Trace, article_D: bool = False
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A, B, C, D of dc_t/dc_{t-1} = A_t + B_t + C_t + D_t, each (T, B, H, H) float64.

    Row [t-1, b] is step t (processing order) of sequence b; step 1's A, C, D are 0.
    article_D=True uses the article's sigma'(z_g) in D_t instead of tanh'(z_g) (wrong).
    Memory: 4 T B H^2 floats; use lstm_terms for the norms alone.
    """
    _check_lstm(layer, trace, "lstm_jacobians")
    steps = lstm_steps(layer, trace, article_D)
    T = steps.f.shape[0]
    terms = [steps.terms(s) for s in range(T)]
    return tuple(torch.stack(x) for x in zip(*terms, strict=True))  # 4 x (T, B, H, H)


def lstm_terms(layer: nn.Module, trace: Trace, article_D: bool = False) -> LSTMTerms:
    """Per-step batch-mean spectral norms of A_t, B_t, C_t, D_t and A_t + B_t + C_t + D_t.

    ||B_t|| = max f_t. article_D=True uses the article's sigma'(z_g) in D_t (wrong).
    """
    _check_lstm(layer, trace, "lstm_terms")
    steps = lstm_steps(layer, trace, article_D)
    T = steps.f.shape[0]
    norms = np.empty((5, T))
    for s in range(T):
        A, B_s, C, D = steps.terms(s)  # (B, H, H) each
        M = torch.stack((A, C, D, A + B_s + C + D))  # (4, B, H, H)
        a, c, d, total = spectral_norm(M).mean(dim=1).tolist()
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
