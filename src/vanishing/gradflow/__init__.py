"""Gradient flow through time, measured from the layers' own recording.

`steps.py` turns a `Trace` into step Jacobians (article eqs. 2 and 6), `spectral.py` takes
spectral norms of them and of their products, `lags.py` measures by lag (`lag_profile`,
`gradient_horizon`, `rnn_bound`), `terms.py` the LSTM's A_t, B_t, C_t, D_t, `clipping.py`
holds the remedies at the gradient, `model.py` measures a user's own model
(`vanishing.profile`) and `monitor.py` watches it while it trains (`vanishing.monitor`).
docs/gradflow.md defines every quantity.
"""

from vanishing.gradflow.clipping import clip_grad_norm_, scale_recurrent_
from vanishing.gradflow.lags import LagProfile, gradient_horizon, lag_profile, rnn_bound
from vanishing.gradflow.model import DETAILS, LayerProfile, profile, swap_layers
from vanishing.gradflow.monitor import Monitor, lag_history, monitor
from vanishing.gradflow.terms import LSTMTerms, lstm_jacobians, lstm_terms

__all__ = [
    "DETAILS",
    "LSTMTerms",
    "LagProfile",
    "LayerProfile",
    "Monitor",
    "clip_grad_norm_",
    "gradient_horizon",
    "lag_history",
    "lag_profile",
    "lstm_jacobians",
    "lstm_terms",
    "monitor",
    "profile",
    "rnn_bound",
    "scale_recurrent_",
    "swap_layers",
]
