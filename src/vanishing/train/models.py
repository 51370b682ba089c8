"""Models around a recurrent layer for the tasks: a read-out of the last step."""

from __future__ import annotations

from torch import Tensor, nn


class SequenceRegressor(nn.Module):
    """A recurrent layer, then a Linear read-out of its output at the last step k = T.

    x (T, B, I) -> y_hat (B, out). `recurrent` is any layer with torch.nn.RNN's call
    signature whose output is (T, B, H) (batch_first=False).
    """

    def __init__(self, recurrent: nn.Module, out_features: int = 1) -> None:
        super().__init__()
        self.recurrent = recurrent
        dtype = next(recurrent.parameters()).dtype
        self.readout = nn.Linear(recurrent.hidden_size, out_features, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.recurrent(x)  # (T, B, H)
        return self.readout(out[-1])  # (B, out)
