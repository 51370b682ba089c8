"""vanishing: the vanishing-gradient problem of recurrent networks, visible, measured, solved.

RNN and LSTM layers that are drop-in replacements for torch.nn.RNN / torch.nn.LSTM, with the
backward pass written out by hand (backpropagation through time) and per-step states and
gradients on request (`vanishing.nn`); measurements of the gradient flow through them
(`vanishing.gradflow`). docs/architecture.md maps the sub-packages.
"""

from vanishing import gradflow
from vanishing.gradflow import (
    LagProfile,
    LayerProfile,
    LSTMTerms,
    Monitor,
    clip_grad_norm_,
    gradient_horizon,
    lag_profile,
    lstm_jacobians,
    lstm_terms,
    monitor,
    profile,
    rnn_bound,
    scale_recurrent_,
)
from vanishing.nn import LSTM, RNN, Recording, Trace, record

__all__ = [
    "LSTM",
    "RNN",
    "LSTMTerms",
    "LagProfile",
    "LayerProfile",
    "Monitor",
    "Recording",
    "Trace",
    "clip_grad_norm_",
    "gradflow",
    "gradient_horizon",
    "lag_profile",
    "lstm_jacobians",
    "lstm_terms",
    "monitor",
    "profile",
    "record",
    "rnn_bound",
    "scale_recurrent_",
]
__version__ = "0.1.0"
