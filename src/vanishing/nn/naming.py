"""Naming and ordering conventions shared by the layers, traces, gradflow and the tests.

- Parameters are named as in torch.nn: weight_ih + suffix(layer, direction), e.g.
  weight_hh_l1_reverse.
- A layer runs its reverse direction on the time-flipped input: tensors are in *processing
  order* inside the time loops and in *time order* everywhere a user sees them. `flip_time`
  turns one into the other (it is its own inverse). With variable lengths (`packing.py`)
  each sequence is flipped within its own steps, so the reverse direction also starts every
  sequence at step 0 of its processing order, from its initial state.
- Whether a layer or a trace is an LSTM is read from its torch.nn `mode` string, which
  torch.nn.LSTM, vanishing.LSTM and a Trace recorded from either all carry.
"""

from __future__ import annotations

import torch
from torch import Tensor

PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
"""The four parameters of one layer and direction, in torch.nn's order (`all_weights`)."""


def suffix(layer: int, direction: int) -> str:
    """torch.nn's parameter-name suffix: '_l0', '_l1_reverse', ..."""
    return f"_l{layer}" + ("_reverse" if direction else "")


def flip_time(x: Tensor, direction: int, lengths: Tensor | None = None) -> Tensor:
    """x (T, ...) with the time axis reversed for direction 1, as is for direction 0.

    With lengths (B,), x is (T, B, ...) and sequence b is reversed within its own steps
    0 .. lengths[b]-1; the padding beyond stays where it is.
    """
    if not direction:
        return x
    if lengths is None:
        return x.flip(0)
    T, B = x.shape[0], x.shape[1]
    t = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    n = lengths.to(x.device)  # (B,)
    index = torch.where(t < n, n - 1 - t, t)  # (T, B) source step of each step
    return x.gather(0, index.view(T, B, *[1] * (x.dim() - 2)).expand_as(x))


def is_lstm(obj: object) -> bool:
    """True for torch.nn.LSTM, vanishing.LSTM or a Trace recorded from an LSTM."""
    return getattr(obj, "mode", None) == "LSTM"
