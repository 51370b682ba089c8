"""The network every application estimator trains: encoder -> recurrent layer -> Linear head.

x (T, B, ...) holds B sequences padded after each one's own length lengths[b]:

    e = encoder(x)                  (T, B, I)    None: x is already (T, B, I) features
    _, h_n = recurrent(e)           (L * D, B, H) vanishing.LSTM or vanishing.RNN
    z = [h_n of the last layer's directions]     (B, D * H)
    out = head(dropout(z))          (B, outputs)

The read-out is each sequence's own last step: when lengths differ, e is packed
(`torch.nn.utils.rnn.pack_padded_sequence`), so the forward direction's h_n is at step
lengths[b] - 1 and a bidirectional layer's reverse direction starts there too (its h_n has
read the whole sequence, back to step 0). Reading the padded output at lengths[b] - 1 instead
would be wrong for the reverse direction (there it has seen one step). When every length is
T, the padded batch runs as it is (the same result, no packing). `dropout` acts between
stacked layers (as torch.nn's) and on z before the head.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from vanishing.nn import LSTM, RNN

CELLS = ("lstm", "rnn")
"""lstm: vanishing.LSTM; rnn: vanishing.RNN (the simple RNN, `nonlinearity` chooses its act)."""


class RecurrentNet(nn.Module):
    """encoder -> vanishing.LSTM / RNN -> Linear head at each sequence's own last step."""

    def __init__(
        self,
        encoder: nn.Module | None,
        input_size: int,
        outputs: int,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        nonlinearity: str = "tanh",
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        self.encoder = encoder
        kw = dict(
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.recurrent: nn.Module
        if cell == "lstm":
            self.recurrent = LSTM(input_size, hidden_size, forget_bias=forget_bias, **kw)
        else:
            self.recurrent = RNN(input_size, hidden_size, nonlinearity=nonlinearity, **kw)
        self.directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.directions * hidden_size, outputs)

    def features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """(B, D * H): the last layer's final state of each direction, at each sequence's end."""
        e = x if self.encoder is None else self.encoder(x)  # (T, B, I)
        T = e.shape[0]
        if lengths is None or bool((lengths == T).all()):
            _, state = self.recurrent(e)
        else:
            packed = pack_padded_sequence(e, lengths.cpu(), enforce_sorted=False)
            _, state = self.recurrent(packed)
        h_n = state[0] if isinstance(state, tuple) else state  # (L * D, B, H)
        last = h_n[-self.directions :]  # (D, B, H)
        return torch.cat(list(last), dim=1)  # (B, D * H)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.head(self.dropout(self.features(x, lengths)))  # (B, outputs)
