"""vanishing: the vanishing-gradient problem of recurrent networks, visible, measured, solved.

RNN and LSTM layers that are drop-in replacements for torch.nn.RNN / torch.nn.LSTM, with the
backward pass written out by hand (backpropagation through time) and per-step states and
gradients on request.
"""

from vanishing.layers import LSTM, RNN
from vanishing.trace import Recording, Trace, record

__all__ = ["LSTM", "RNN", "Recording", "Trace", "record"]
__version__ = "0.1.0"
