"""Profile the gradient flow of a user's own model: `profile(module, inputs, loss_fn)`.

The model is deep-copied with every torch.nn.RNN / torch.nn.LSTM replaced, in the copying
itself, by the vanishing layer with the same configuration and weights (vanishing layers
are copied as they are, GRU and the rest are left alone); the copy runs forward and backward
with recording on, and each recorded layer and direction is measured (`lags.py`,
`terms.py`). The user's model, its parameters, their .grad and the random number
generator's state are not touched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from vanishing.gradflow.lags import LagProfile, lag_profile
from vanishing.gradflow.steps import F64, trace_steps
from vanishing.gradflow.terms import LSTMTerms, lstm_terms
from vanishing.nn import LSTM, RNN, Trace, record, recordable_layers
from vanishing.nn.naming import is_lstm

Detail = Literal["norms", "terms", "exact"]
DETAILS: tuple[str, ...] = ("norms", "terms", "exact")
"""How much `profile` measures, cheapest first:
'norms': per-lag gradient norms, horizon and (RNN) bound, read from the recording;
'terms': also the Jacobian-product norms and the LSTM's four terms A_t, B_t, C_t, D_t,
  estimated from matrix-vector products (lower bounds, accuracy in docs/gradflow.md);
'exact': as 'terms', with every matrix formed and its exact spectral norm (float64)."""


@dataclass
class LayerProfile:
    """Measurements of one layer and direction: name in module.named_modules(), kind
    ('RNN' | 'LSTM'), the measured layer (in the profiled copy) and its recorded trace, the
    lag profile and (LSTM, detail 'terms' or 'exact') the four terms."""

    name: str
    kind: str
    layer: nn.Module
    trace: Trace
    lags: LagProfile
    terms: LSTMTerms | None


def vanishing_twin(m: nn.Module) -> nn.Module:
    """The vanishing layer with m's configuration and a copy of its weights (m: torch.nn.RNN
    / LSTM), in m's train/eval mode. Built on the meta device first, so no initialisation
    runs and the random number generator is not used."""
    if getattr(m, "proj_size", 0):
        raise ValueError(
            f"torch.nn.LSTM with proj_size={m.proj_size} is not supported by vanishing.profile"
        )
    W = m.weight_ih_l0
    config = dict(
        num_layers=m.num_layers,
        bias=m.bias,
        batch_first=m.batch_first,
        dropout=float(m.dropout),
        bidirectional=m.bidirectional,
        device="meta",
        dtype=W.dtype,
    )
    if is_lstm(m):
        twin = LSTM(m.input_size, m.hidden_size, **config)
    else:
        twin = RNN(m.input_size, m.hidden_size, nonlinearity=m.nonlinearity, **config)
    twin = twin.to_empty(device=W.device)
    with torch.no_grad():
        for name, p in m.named_parameters():
            twin.get_parameter(name).copy_(p)
    return twin.train(m.training)


def swapped_copy(model: nn.Module) -> nn.Module:
    """A deep copy of model in which every torch.nn.RNN / torch.nn.LSTM is its vanishing twin.

    One copy of every parameter and buffer; a layer shared by several parents gets one
    twin, still shared (deepcopy's memo).
    """
    memo: dict[int, object] = {}
    for m in model.modules():
        if isinstance(m, (nn.RNN, nn.LSTM)) and id(m) not in memo:
            memo[id(m)] = vanishing_twin(m)
    return copy.deepcopy(model, memo)


def swap_layers(model: nn.Module) -> nn.Module:
    """Replace every torch.nn.RNN / torch.nn.LSTM in model, in place, by its vanishing twin.

    Returns the model (a new object if model itself is such a layer). A layer shared by
    several parents gets one twin, still shared.
    """
    twins: dict[int, nn.Module] = {}

    def twin_of(m: nn.Module) -> nn.Module:
        if id(m) not in twins:
            twins[id(m)] = vanishing_twin(m)
        return twins[id(m)]

    if isinstance(model, (nn.RNN, nn.LSTM)):
        return twin_of(model)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, (nn.RNN, nn.LSTM)):
                setattr(parent, child_name, twin_of(child))
    return model


def _arguments(inputs: object, dtype: torch.dtype | None) -> tuple:
    """inputs as a tuple of positional arguments, tensors detached (their .grad untouched)
    and, with dtype, floating-point tensors cast to it."""
    args = inputs if isinstance(inputs, tuple) else (inputs,)

    def prepare(a: object) -> object:
        if not isinstance(a, Tensor):
            return a
        a = a.detach()
        return a.to(dtype) if dtype is not None and a.is_floating_point() else a

    return tuple(prepare(a) for a in args)


def profile(
    module: nn.Module,
    inputs: Tensor | tuple,
    loss_fn: Callable[[object], Tensor],
    fraction: float = 1e-3,
    *,
    detail: Detail = "terms",
    dtype: torch.dtype | None = None,
) -> dict[str, list[LayerProfile]]:
    """Gradient flow of every recurrent layer of module for one batch and loss.

    Runs loss_fn(copy(*inputs)).backward() on a copy with vanishing layers (inputs: a tensor
    or a tuple of positional arguments) and returns {name in module.named_modules():
    [LayerProfile per layer * direction]}. detail: 'norms', 'terms' or 'exact' (`DETAILS`).
    dtype: run the copy and the floating-point inputs in this dtype (float64 resolves
    norms far below float32's range). The lag profile reads dE_k/dh_t as measured, so it
    is the article's quantity when the loss depends on the last step k = T only. If a layer
    runs several times in one forward, its last call is measured. Train/eval mode is kept
    (dropout between stacked layers acts in train mode, with the generator's state restored
    afterwards). Cost and accuracy of each detail: docs/gradflow.md.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {', '.join(DETAILS)}, got {detail!r}")
    model = swapped_copy(module)
    if dtype is not None:
        model = model.to(dtype)
    layers = recordable_layers(model)
    if not layers:
        raise ValueError(
            f"{type(module).__name__} contains no torch.nn.RNN, torch.nn.LSTM, vanishing.RNN "
            "or vanishing.LSTM layer to profile"
        )
    for p in model.parameters():
        p.grad = None
    with record(model) as recording, torch.random.fork_rng(devices=[]):
        loss = loss_fn(model(*_arguments(inputs, dtype)))
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise TypeError("loss_fn must return a tensor with a single element (the loss)")
        loss.backward()
    result: dict[str, list[LayerProfile]] = {}
    for name, layer in layers.items():
        for trace in recording[name]:
            if trace.dh is None:
                raise ValueError(
                    f"layer {name!r} ({trace.name}) received no gradient from the loss"
                )
        result[name] = [_measure(name, layer, trace, fraction, detail) for trace in recording[name]]
    return result


def _measure(
    name: str, layer: nn.Module, trace: Trace, fraction: float, detail: str
) -> LayerProfile:
    """One layer and direction's LayerProfile at the given detail (the step factors built once)."""
    lstm = is_lstm(layer)
    steps, terms = None, None
    exact = detail == "exact"
    if detail != "norms":
        steps = trace_steps(layer, trace, F64 if exact else trace.h.dtype)
        if lstm:
            terms = lstm_terms(layer, trace, exact=exact, steps=steps)
    lags = lag_profile(layer, trace, fraction, jacobian=detail != "norms", exact=exact, steps=steps)
    return LayerProfile(name, "LSTM" if lstm else "RNN", layer, trace, lags, terms)
