"""The simple RNN's nonlinearities: one table that every part of vanishing reads.

For each name: the activation act, its derivative written through the output
h = act(z), and gamma = sup |act'|, the factor of Pascanu et al.'s bound
||prod_t dh_t/dh_{t-1}|| <= (gamma lambda_1)^lag. The compiled kernel (`kernel/bptt.cpp`)
mirrors the table under the same names; `tests/test_kernel.py` holds the two equal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Nonlinearity:
    """One activation: name, act, act'(z) from h = act(z), gamma, torch.nn's mode."""

    name: str
    apply: Callable[[Tensor], Tensor]  # act(z), a new tensor (differentiable)
    grad_from_output: Callable[[Tensor], Tensor]  # act'(z) from h = act(z), any shape
    grad_bound: float  # gamma = sup |act'|
    mode: str  # torch.nn.RNN's `mode` string for this activation


NONLINEARITIES: dict[str, Nonlinearity] = {
    n.name: n
    for n in (
        Nonlinearity("tanh", torch.tanh, lambda h: 1.0 - h * h, 1.0, "RNN_TANH"),
        Nonlinearity("relu", torch.relu, lambda h: (h > 0).to(h.dtype), 1.0, "RNN_RELU"),
        Nonlinearity("sigmoid", torch.sigmoid, lambda h: h * (1.0 - h), 0.25, "RNN_SIGMOID"),
    )
}
"""tanh and relu as torch.nn.RNN; sigmoid, the article's state update."""

NAMES: tuple[str, ...] = tuple(NONLINEARITIES)
"""('tanh', 'relu', 'sigmoid'): the choices every layer, command and report offers."""


def nonlinearity(name: str) -> Nonlinearity:
    """The table's entry for name; ValueError naming the choices for anything else."""
    if not isinstance(name, str) or name not in NONLINEARITIES:
        raise ValueError(f"Unknown nonlinearity {name!r}; expected one of {', '.join(NAMES)}")
    return NONLINEARITIES[name]


def activation(z: Tensor, name: str) -> Tensor:
    """act(z)."""
    return nonlinearity(name).apply(z)


def activation_grad(h: Tensor, name: str) -> Tensor:
    """act'(z) written through h = act(z): sigmoid h(1-h), tanh 1-h^2, relu [h>0]."""
    return nonlinearity(name).grad_from_output(h)


def activation_grad_bound(name: str) -> float:
    """gamma = sup |act'|: 1/4 for sigmoid, 1 for tanh and relu (Pascanu et al. 2013)."""
    return nonlinearity(name).grad_bound


def sigmoid_grad_from_tanh(g: Tensor) -> Tensor:
    """sigma'(z) from g = tanh(z): r / (1 + r)^2 with r = e^{-|z|} = sqrt((1 - |g|) / (1 + |g|)).

    The article's (wrong) factor of D_t, evaluated where only the candidate g_t was kept.
    """
    a = g.abs()
    r = torch.sqrt((1.0 - a) / (1.0 + a))
    return r / (1.0 + r) ** 2
