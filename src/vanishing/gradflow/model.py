"""Profile the gradient flow of a user's own model: `profile(module, inputs, loss_fn)`.

The model is deep-copied, and in the copy the recurrence that torch.nn.RNN / LSTM.forward
runs is vanishing's, recorded: each torch.nn.RNN / LSTM keeps its class, hooks and
parametrisations, and the call that reaches torch.nn.RNN / LSTM.forward (directly, or by
`super().forward` from a subclass's own forward) runs a vanishing layer built from the
weights the layer has at that moment (as parametrisations such as
torch.nn.utils.parametrizations.weight_norm compute them). So a subclass's forward runs
around our recurrence and a parametrised weight is measured as used; a subclass whose
forward never reaches torch.nn's forward that way cannot be measured and is refused, by
name. vanishing layers are copied as they are, GRU and the rest are left alone. The copy
runs forward and backward with recording on, and each recorded layer and direction is
measured (`lags.py`, `terms.py`). The user's model, its parameters, their .grad and the
random number generator's state are not touched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.rnn import PackedSequence
from torch.nn.utils.weight_norm import WeightNorm

from vanishing.gradflow.lags import LagProfile, check_fraction, lag_profile
from vanishing.gradflow.steps import F64, trace_steps
from vanishing.gradflow.terms import LSTMTerms, lstm_terms
from vanishing.nn import LSTM, RNN, Trace, recordable_layers
from vanishing.nn.naming import is_lstm

Detail = Literal["norms", "terms", "exact"]
DETAILS: tuple[str, ...] = ("norms", "terms", "exact")
"""How much `profile` measures, cheapest first:
'norms': per-lag gradient norms, horizon and (RNN) bound, read from the recording;
'terms': also the Jacobian-product norms and the LSTM's four terms A_t, B_t, C_t, D_t,
  estimated from matrix-vector products (lower bounds, accuracy in docs/gradflow.md);
'exact': as 'terms', with every matrix formed and its exact spectral norm (float64)."""

TWIN = "_vanishing_twin"  # a profiled torch.nn layer's vanishing layer of its last call


@dataclass
class LayerProfile:
    """Measurements of one layer and direction: name in module.named_modules(), kind
    ('RNN' | 'LSTM'), the measured layer (in the profiled copy; for a torch.nn layer the
    vanishing layer that ran its last call, with the weights of that call) and its recorded
    trace, the lag profile and (LSTM, detail 'terms' or 'exact') the four terms."""

    name: str
    kind: str
    layer: nn.Module
    trace: Trace
    lags: LagProfile
    terms: LSTMTerms | None


def load_weights(twin: nn.Module, m: nn.Module) -> None:
    """Copy m's weights into twin (same names), as m computes them: a parametrised weight
    (torch.nn.utils.parametrize) is its parametrisation's value, not the stored original."""
    with torch.no_grad():
        for name in m._flat_weights_names:
            twin.get_parameter(name).copy_(getattr(m, name))


def vanishing_twin(m: nn.Module) -> nn.Module:
    """The vanishing layer with m's configuration and a copy of its weights (m: torch.nn.RNN
    / LSTM, `load_weights`), in m's train/eval mode. Built on the meta device first, so no
    initialisation runs and the random number generator is not used."""
    if getattr(m, "proj_size", 0):
        raise ValueError(
            f"torch.nn.LSTM with proj_size={m.proj_size} is not supported by vanishing "
            "(no projected LSTM)"
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
    load_weights(twin, m)
    return twin.train(m.training)


def state_needing_grad(layer: nn.Module, input: Tensor | PackedSequence, hx: object) -> object:
    """hx for layer(input, hx) with its h_0 a leaf that requires grad: zeros of the layer's
    state shape when hx is None, (h_0, c_0) for an LSTM.

    With frozen weights and an input that needs no gradient, the layer's backward then still
    runs and records dL/dh_t, and it skips the input's GEMM dx_t = dz_t W_ih as well as the
    weights' (the monitor's replay, `profile`'s copy). input and hx as torch.nn.RNN / LSTM
    accept them; anything else is returned as it came, for the layer's own checks to name."""
    data = input.data if isinstance(input, PackedSequence) else input
    given = hx[0] if isinstance(hx, tuple) and hx else hx
    if not (isinstance(data, Tensor) and data.is_floating_point()) or not (
        given is None or (isinstance(given, Tensor) and given.is_floating_point())
    ):
        return hx
    if hx is None:
        if isinstance(input, PackedSequence):
            batch: tuple[int, ...] = (int(input.batch_sizes[0]),)
            like = input.data
        else:
            batched = input.dim() == 3
            batch = (input.shape[0 if layer.batch_first else 1],) if batched else ()
            like = input
        shape = (layer.num_layers * (2 if layer.bidirectional else 1), *batch)
        h0 = like.new_zeros((*shape, getattr(layer, "proj_size", 0) or layer.hidden_size))
        hx = (h0, like.new_zeros((*shape, layer.hidden_size))) if is_lstm(layer) else h0
    if isinstance(hx, tuple):
        return (hx[0].detach().requires_grad_(), *hx[1:])
    return hx.detach().requires_grad_()


def _reaches(value: object) -> bool:
    """True if value (a tensor, a PackedSequence or a tuple of tensors) requires grad: the
    backward then reaches a layer called with it."""
    if isinstance(value, PackedSequence):
        return value.data.requires_grad
    if isinstance(value, tuple):
        return any(_reaches(v) for v in value)
    return isinstance(value, Tensor) and value.requires_grad


def _measured_call(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
    """Forward pre-hook of a vanishing layer in the profiled copy: if neither its input nor
    its initial state needs grad, its initial state is made to (`state_needing_grad`), so
    that the backward reaches it without computing dx."""
    input = args[0] if args else kwargs.get("input")
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    if input is None or _reaches(input) or _reaches(hx):
        return None
    hx = state_needing_grad(module, input, hx)  # no dx: the initial state needs grad
    if len(args) > 1:
        return (args[0], hx, *args[2:]), kwargs
    return args, {**kwargs, "hx": hx}


def _recurrence(self: nn.Module, input: Tensor | PackedSequence, hx: object = None) -> object:
    """torch.nn.RNN / LSTM.forward in the profiled copy: a recorded vanishing layer with the
    layer's weights as they are now runs the call (kept on the layer as TWIN); its weights are
    frozen, and unless the call's input or initial state needs grad already, its initial
    state is made to (`state_needing_grad`): the backward records dL/dh_t and computes
    neither weight gradients nor dx."""
    twin = vanishing_twin(self).requires_grad_(False)
    twin.record = True
    self.__dict__[TWIN] = twin  # not a submodule: the copy's modules stay the user's
    if _reaches(input) or _reaches(hx):  # the backward reaches the twin already
        return twin(input, hx)
    return twin(input, state_needing_grad(twin, input, hx))  # no dx: the state needs grad


class _RNNRecurrence(nn.RNN):
    forward = _recurrence


class _LSTMRecurrence(nn.LSTM):
    forward = _recurrence


_CLASSES: dict[type, type] = {nn.RNN: _RNNRecurrence, nn.LSTM: _LSTMRecurrence}


def _recurrence_class(cls: type, name: str) -> type:
    """cls (torch.nn.RNN / LSTM or a subclass) with _recurrence in place of torch.nn's
    forward: for a subclass, a class between it and torch.nn.RNN / LSTM in the method
    resolution order, so that its own forward's super().forward reaches our recurrence."""
    if cls not in _CLASSES:
        base = _CLASSES[nn.LSTM if issubclass(cls, nn.LSTM) else nn.RNN]
        try:
            _CLASSES[cls] = type(cls.__name__, (cls, base), {"__module__": cls.__module__})
        except TypeError as e:
            raise ValueError(
                f"vanishing.profile cannot measure layer {name!r} ({cls.__name__}): it cannot "
                f"run vanishing's recurrence under this subclass of {base.__bases__[0].__name__} "
                f"({e})"
            ) from e
    return _CLASSES[cls]


def _weight_norm_user(module: nn.Module) -> str | None:
    """The name of a module that uses the deprecated torch.nn.utils.weight_norm, or None."""
    for name, m in module.named_modules():
        if any(isinstance(h, WeightNorm) for h in getattr(m, "_forward_pre_hooks", {}).values()):
            return name
    return None


def _deep_copy(module: nn.Module) -> nn.Module:
    """copy.deepcopy(module), or one ValueError saying why torch cannot copy it.

    A parametrised torch.nn.RNN / LSTM that has run keeps its computed (non-leaf) weights in
    _flat_weights, which deepcopy refuses; they are copied detached (torch.nn's forward
    computes them again)."""
    memo: dict[int, object] = {}
    for m in module.modules():
        if isinstance(m, nn.RNNBase):
            for w in getattr(m, "_flat_weights", []):
                if isinstance(w, Tensor) and not w.is_leaf:
                    memo[id(w)] = w.detach().clone()
    try:
        return copy.deepcopy(module, memo)
    except RuntimeError as e:
        user = _weight_norm_user(module)
        if user is not None:
            raise ValueError(
                f"vanishing.profile measures a copy of the model, and module {user!r} uses "
                "torch.nn.utils.weight_norm (deprecated), whose modules torch cannot copy: "
                "use torch.nn.utils.parametrizations.weight_norm"
            ) from e
        raise ValueError(
            f"vanishing.profile measures a copy of the model, and torch cannot deep-copy this "
            f"{type(module).__name__}: {str(e).splitlines()[0]}"
        ) from e


def swap_layers(model: nn.Module) -> nn.Module:
    """Replace every torch.nn.RNN / torch.nn.LSTM in model, in place, by its vanishing twin.

    Returns the model (a new object if model itself is such a layer). A layer shared by
    several parents gets one twin, still shared. Only plain layers are replaced: a subclass,
    a parametrised weight or a hook would be lost with the layer, so they are a ValueError
    (`profile` measures such layers faithfully).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    twins: dict[int, nn.Module] = {}

    def twin_of(m: nn.Module, name: str) -> nn.Module:
        if type(m) not in (nn.RNN, nn.LSTM) or m._forward_hooks or m._forward_pre_hooks:
            what = f"a {type(m).__name__}" if type(m) not in (nn.RNN, nn.LSTM) else "hooked"
            if parametrize.is_parametrized(m):
                what = "parametrised"
            raise ValueError(
                f"swap_layers replaces torch.nn.RNN / LSTM by vanishing layers, and layer "
                f"{name!r} is {what}: that would be lost in the swap (vanishing.profile "
                "measures it as it is)"
            )
        if id(m) not in twins:
            twins[id(m)] = vanishing_twin(m)
        return twins[id(m)]

    if isinstance(model, (nn.RNN, nn.LSTM)):
        return twin_of(model, "")
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, (nn.RNN, nn.LSTM)):
                name = f"{parent_name}.{child_name}" if parent_name else child_name
                setattr(parent, child_name, twin_of(child, name))
    return model


def _arguments(inputs: object, dtype: torch.dtype | None) -> tuple:
    """inputs as a tuple of positional arguments (a PackedSequence is one argument), tensors
    detached (their .grad untouched) and, with dtype, floating-point tensors cast to it."""
    args = (
        inputs
        if isinstance(inputs, tuple) and not isinstance(inputs, PackedSequence)
        else (inputs,)
    )

    def prepare(a: object) -> object:
        if isinstance(a, PackedSequence):
            data = prepare(a.data)
            return PackedSequence(data, a.batch_sizes, a.sorted_indices, a.unsorted_indices)
        if not isinstance(a, Tensor):
            return a
        a = a.detach()
        return a.to(dtype) if dtype is not None and a.is_floating_point() else a

    return tuple(prepare(a) for a in args)


def profile(
    module: nn.Module,
    inputs: Tensor | PackedSequence | tuple,
    loss_fn: Callable[[object], Tensor],
    fraction: float = 1e-3,
    *,
    detail: Detail = "terms",
    dtype: torch.dtype | None = None,
) -> dict[str, list[LayerProfile]]:
    """Gradient flow of every recurrent layer of module for one batch and loss.

    Runs loss_fn(copy(*inputs)).backward() on a copy whose recurrences are vanishing's
    (module docstring; inputs: a tensor, a PackedSequence or a tuple of positional
    arguments) and returns {name in module.named_modules(): [LayerProfile per layer *
    direction]}. detail: 'norms', 'terms' or 'exact' (`DETAILS`). dtype: run the copy and
    the floating-point inputs in this dtype (float64 resolves norms far below float32's
    range). The lag profile reads dE_k/dh_t as measured, so it is the article's quantity
    when the loss depends on the last step k = T only (with a PackedSequence, each
    sequence's own last step). If a layer runs several times in one forward, its last call
    is measured; a layer that does not run gives []. Train/eval mode is kept (dropout
    between stacked layers acts in train mode, with the generator's state restored
    afterwards). Cost and accuracy of each detail: docs/gradflow.md.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {', '.join(DETAILS)}, got {detail!r}")
    check_fraction(fraction)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch.dtype or None, got {dtype!r}")
    model = _deep_copy(module)
    torch_layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.RNN, nn.LSTM))}
    called: set[str] = set()
    for name, m in torch_layers.items():
        m.__class__ = _recurrence_class(type(m), name)
        m.register_forward_pre_hook(lambda m, args, name=name: called.add(name))
    if dtype is not None:
        model = model.to(dtype)
    layers = recordable_layers(model)
    if not layers and not torch_layers:
        raise ValueError(
            f"{type(module).__name__} contains no torch.nn.RNN, torch.nn.LSTM, vanishing.RNN "
            "or vanishing.LSTM layer to profile"
        )
    for layer in layers.values():
        layer.record = True  # a copy carries no traces (nn: copies never carry a recording)
        layer.requires_grad_(False)  # no weight gradients: the recording is what is measured
        layer.register_forward_pre_hook(_measured_call, with_kwargs=True)
    for p in model.parameters():
        p.grad = None
    with torch.random.fork_rng(devices=[]):
        loss = loss_fn(model(*_arguments(inputs, dtype)))
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise TypeError("loss_fn must return a tensor with a single element (the loss)")
        if not loss.requires_grad:
            raise ValueError(
                "loss_fn's loss does not depend on the model's output through autograd "
                "(requires_grad is False): do not detach it or compute it under no_grad"
            )
        loss.backward()
    for name, m in torch_layers.items():
        if TWIN not in m.__dict__ and name in called:
            base = "LSTM" if is_lstm(m) else "RNN"
            raise ValueError(
                f"vanishing.profile cannot measure layer {name!r} ({type(m).__name__}): its "
                f"forward ran without calling torch.nn.{base}.forward through super().forward, "
                "where profile runs vanishing's recurrence (call super().forward, or use "
                f"vanishing.{base} inside it)"
            )
        layers[name] = m.__dict__.get(TWIN)  # None if the layer did not run
    result: dict[str, list[LayerProfile]] = {}
    for name, _ in model.named_modules():
        if name not in layers:
            continue
        layer = layers[name]
        traces = [] if layer is None else layer.traces
        for trace in traces:
            if trace.dh is None:
                raise ValueError(
                    f"layer {name!r} ({trace.name}) received no gradient from the loss"
                )
        result[name] = [_measure(name, layer, trace, fraction, detail) for trace in traces]
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
