"""Naming and ordering conventions shared by the layers, traces, gradflow and the tests.

- Parameters are named as in torch.nn: weight_ih + suffix(layer, direction), e.g.
  weight_hh_l1_reverse.
- A layer runs its reverse direction on the time-flipped input: tensors are in *processing
  order* inside the time loops and in *time order* everywhere a user sees them. `flip_time`
  turns one into the other (it is its own inverse).
- Whether a layer or a trace is an LSTM is read from its torch.nn `mode` string, which
  torch.nn.LSTM, vanishing.LSTM and a Trace recorded from either all carry.
"""

from __future__ import annotations

from torch import Tensor

PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
"""The four parameters of one layer and direction, in torch.nn's order (`all_weights`)."""


def suffix(layer: int, direction: int) -> str:
    """torch.nn's parameter-name suffix: '_l0', '_l1_reverse', ..."""
    return f"_l{layer}" + ("_reverse" if direction else "")


def flip_time(x: Tensor, direction: int) -> Tensor:
    """x (T, ...) with the time axis reversed for direction 1, as is for direction 0."""
    return x.flip(0) if direction else x


def is_lstm(obj: object) -> bool:
    """True for torch.nn.LSTM, vanishing.LSTM or a Trace recorded from an LSTM."""
    return getattr(obj, "mode", None) == "LSTM"
