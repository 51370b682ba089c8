"""The layers and their math: RNN and LSTM with hand-derived BPTT, per-step recording.

Read in this order: `activations.py` (the RNN's nonlinearity table), `naming.py`
(parameter names, time order), `projection.py` (the all-steps GEMMs), `rnn.py` and `lstm.py`
(one layer and direction, forward and backward), `kernel/` (the same loops compiled),
`functions.py` (the autograd Functions), `validate.py`, `trace.py`, `layers.py` (the drop-in
modules) and `recording.py` (`record(model)`).
"""

from vanishing.nn.layers import LSTM, RNN, RecurrentBase
from vanishing.nn.recording import Recording, record, recordable_layers
from vanishing.nn.trace import StaleTraceError, Trace
from vanishing.nn.validate import InputDtypeError, InputError

__all__ = [
    "LSTM",
    "RNN",
    "InputDtypeError",
    "InputError",
    "RecurrentBase",
    "Recording",
    "StaleTraceError",
    "Trace",
    "record",
    "recordable_layers",
]
