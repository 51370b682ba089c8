"""Models for the tasks: a recurrent layer with a Linear read-out; the config that builds one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from vanishing.nn import LSTM, RNN
from vanishing.nn.activations import NAMES
from vanishing.train.config import check_int, from_dict
from vanishing.train.init import chrono_, forget_bias_

MODELS = ("lstm", "rnn")
IMPLEMENTATIONS = ("vanishing", "torch")
"""vanishing: our layers (hand-derived BPTT); torch: torch.nn.RNN / torch.nn.LSTM."""


class SequenceModel(nn.Module):
    """A recurrent layer, then a Linear read-out of its output.

    x (T, B, I) -> (B, out) read at each sequence's last step k = lengths[b] (the last step T
    if lengths is None), or (T, B, out) at every step if per_step. `recurrent` is any layer
    with torch.nn.RNN's call signature whose output is (T, B, H) (batch_first=False).
    """

    def __init__(self, recurrent: nn.Module, out_features: int = 1, per_step: bool = False) -> None:
        super().__init__()
        self.recurrent = recurrent
        self.per_step = per_step
        dtype = next(recurrent.parameters()).dtype
        self.readout = nn.Linear(recurrent.hidden_size, out_features, dtype=dtype)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        out, _ = self.recurrent(x)  # (T, B, H)
        if self.per_step:
            return self.readout(out)  # (T, B, out)
        if lengths is None:
            return self.readout(out[-1])  # (B, out)
        last = out[lengths - 1, torch.arange(out.shape[1])]  # (B, H) each sequence's end
        return self.readout(last)  # (B, out)


@dataclass
class ModelConfig:
    """Which model to train.

    model: 'lstm' or 'rnn'; hidden: units per layer; layers: stacked layers; nonlinearity:
    the RNN's activation (nn.activations.NAMES; 'sigmoid' is the article's); LSTM gate
    biases: chrono initialisation (Tallec & Ollivier 2018), the default, or forget_bias added
    to the forget-gate bias (1.0: Jozefowicz et al. 2015; 0.0: PyTorch's initialisation);
    giving forget_bias turns chrono off; impl: 'vanishing' (our layers) or 'torch'
    (torch.nn's fused layers).
    """

    model: str = "lstm"
    hidden: int = 32
    layers: int = 1
    nonlinearity: str | None = None
    forget_bias: float | None = None
    chrono: bool | None = None
    impl: str = "vanishing"

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.impl not in IMPLEMENTATIONS:
            raise ValueError(f"impl must be one of {', '.join(IMPLEMENTATIONS)}, got {self.impl!r}")
        check_int("hidden", self.hidden, 1)
        check_int("layers", self.layers, 1)
        if self.chrono is not None and not isinstance(self.chrono, bool):
            raise TypeError(f"chrono must be a bool, got {self.chrono!r}")
        if self.model == "rnn":
            if self.forget_bias is not None or self.chrono:
                raise ValueError("forget_bias and chrono apply to the lstm only")
            self.nonlinearity = self.nonlinearity or "tanh"
            if self.nonlinearity not in NAMES:
                raise ValueError(
                    f"nonlinearity must be one of {', '.join(NAMES)}, got {self.nonlinearity!r}"
                )
            if self.impl == "torch" and self.nonlinearity == "sigmoid":
                raise ValueError("torch.nn.RNN has no sigmoid nonlinearity: use impl='vanishing'")
            return
        if self.nonlinearity is not None:
            raise ValueError("nonlinearity applies to the rnn only (LSTM gates are fixed)")
        if self.chrono and self.forget_bias is not None:
            raise ValueError("chrono sets the forget-gate bias: give forget_bias or chrono")
        if self.chrono is None:
            self.chrono = self.forget_bias is None
        if self.forget_bias is not None:
            if isinstance(self.forget_bias, bool) or not isinstance(self.forget_bias, (int, float)):
                raise TypeError(f"forget_bias must be a number, got {self.forget_bias!r}")
            self.forget_bias = float(self.forget_bias)
        elif not self.chrono:
            self.forget_bias = 0.0

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelConfig:
        return from_dict(cls, values)

    @property
    def label(self) -> str:
        """'LSTM (chrono)', 'LSTM (forget bias 1)' or 'RNN (tanh)', for tables and figures."""
        if self.model == "rnn":
            return f"RNN ({self.nonlinearity})"
        return "LSTM (chrono)" if self.chrono else f"LSTM (forget bias {self.forget_bias:g})"


def build_model(
    config: ModelConfig,
    input_size: int,
    outputs: int,
    per_step: bool = False,
    T_max: int | None = None,
    seed: int = 0,
) -> SequenceModel:
    """The model `config` describes, initialised from torch.manual_seed(seed).

    T_max: the longest lag the task can ask for, needed by chrono initialisation.
    """
    torch.manual_seed(seed)
    kw = dict(num_layers=config.layers)
    layer: nn.Module
    if config.model == "lstm":
        layer = (
            LSTM(input_size, config.hidden, **kw)
            if config.impl == "vanishing"
            else (nn.LSTM(input_size, config.hidden, **kw))
        )
        if config.chrono:
            if T_max is None:
                raise ValueError("chrono initialisation needs T_max, the task's longest lag")
            chrono_(layer, T_max)
        elif config.forget_bias:
            forget_bias_(layer, config.forget_bias)
    elif config.impl == "vanishing":
        layer = RNN(input_size, config.hidden, nonlinearity=config.nonlinearity, **kw)
    else:
        layer = nn.RNN(input_size, config.hidden, nonlinearity=config.nonlinearity, **kw)
    return SequenceModel(layer, outputs, per_step)
