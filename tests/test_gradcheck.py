"""The hand-derived backward against numerical differentiation, in float64.

Every parameter is an input of the checked function (through torch.func.functional_call),
so the weight gradients are checked as well as those of x, h0 and c0.

ReLU: the finite differences are wrong only where a pre-activation lies within ~eps of the
kink at 0. `relu_safe_inputs` redraws the inputs until every pre-activation of every layer,
direction and step is at least 1e-3 away from 0 (measured with the autograd reference), so
the check runs at the default tolerances instead of loosened ones.
"""

import itertools

import pytest
import torch
from conftest import (
    ALL_KINDS,
    forward_backward,
    join_states,
    kind_id,
    make_inputs,
    make_layer,
    projection_loss,
    reference_forward,
    split_states,
)
from torch.autograd import gradcheck
from torch.func import functional_call

T, B, I, H = 3, 2, 2, 2


def min_abs_preactivation(layer, x, hx) -> float:
    steps: dict = {}
    with torch.no_grad():
        reference_forward(layer, x, hx, steps)
    return min(z.abs().min().item() for rec in steps.values() for z in rec["z"])


def relu_safe_inputs(layer, T, B, margin=1e-3):
    for _ in range(100):
        x, hx = make_inputs(layer, T, B)
        if min_abs_preactivation(layer, x, hx) > margin:
            return x, hx
    raise AssertionError("no ReLU-safe inputs found")


def inputs_for(layer, kind, T, B):
    if kind[1] == "relu":
        return relu_safe_inputs(layer, T, B)
    return make_inputs(layer, T, B)


def layer_as_function(layer, n_states: int):
    """f(x, *states, *parameters) -> (output, h_n[, c_n]) for gradcheck."""
    names = [n for n, _ in layer.named_parameters()]
    lstm = n_states == 2

    def f(x, *rest):
        states, params = rest[:n_states], rest[n_states:]
        out, finals = functional_call(
            layer, dict(zip(names, params, strict=True)), (x, join_states(lstm, states))
        )
        return (out, *split_states(finals))

    return f


def run_gradcheck(layer, x, hx, fast_mode: bool) -> bool:
    states = tuple(s.detach().clone().requires_grad_() for s in split_states(hx))
    params = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())
    x = x.detach().clone().requires_grad_()
    f = layer_as_function(layer, len(states))
    return gradcheck(f, (x, *states, *params), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=fast_mode)


OPTIONS = list(itertools.product((1, 2), (False, True), (False, True), (True, False)))


@pytest.mark.parametrize(
    "num_layers,bidirectional,batch_first,bias",
    OPTIONS,
    ids=[f"L{n}{'-bi' * bi}{'-bf' * bf}{'-nobias' * (not b)}" for n, bi, bf, b in OPTIONS],
)
@pytest.mark.parametrize("kind", ALL_KINDS, ids=kind_id)
def test_gradcheck_all_options(kind, num_layers, bidirectional, batch_first, bias):
    """fast_mode: one random projection u^T J v per case (a wrong entry anywhere shows);
    the full Jacobians are checked below and element by element in the last test."""
    layer = make_layer(
        *kind,
        I,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        bias=bias,
    )
    x, hx = inputs_for(layer, kind, T, B)
    assert run_gradcheck(layer, x, hx, fast_mode=True)


@pytest.mark.parametrize("kind", ALL_KINDS, ids=kind_id)
def test_gradcheck_full_jacobian(kind):
    layer = make_layer(*kind, I, H, num_layers=2, bidirectional=True, batch_first=True)
    x, hx = inputs_for(layer, kind, T, B)
    assert run_gradcheck(layer, x, hx, fast_mode=False)


@pytest.mark.parametrize("kind", ALL_KINDS, ids=kind_id)
def test_gradcheck_unbatched(kind):
    layer = make_layer(*kind, I, H, num_layers=2, bidirectional=True)
    x, hx = inputs_for(layer, kind, T, None)
    assert x.dim() == 2
    assert run_gradcheck(layer, x, hx, fast_mode=False)


def test_gradcheck_long_sequence_lstm():
    layer = make_layer("lstm", None, I, H)
    x, hx = make_inputs(layer, 6, 2)
    assert run_gradcheck(layer, x, hx, fast_mode=False)


# --- an independent check: our own central differences, element by element -------------


def central_differences(loss_of, tensors: list[torch.Tensor], eps: float = 1e-6):
    """d loss_of() / d t for each t, by (L(t + eps) - L(t - eps)) / (2 eps) per element."""
    grads = []
    for t in tensors:
        flat = t.view(-1)
        g = torch.zeros_like(flat)
        for k in range(flat.numel()):
            orig = flat[k].item()
            flat[k] = orig + eps
            up = loss_of()
            flat[k] = orig - eps
            down = loss_of()
            flat[k] = orig
            g[k] = (up - down) / (2 * eps)
        grads.append(g.view_as(t))
    return grads


FD_CASES = [
    (("rnn", "tanh"), dict(num_layers=2, bidirectional=True, batch_first=True), 3),
    (("rnn", "relu"), dict(num_layers=2, bidirectional=True), 3),
    (("rnn", "sigmoid"), dict(num_layers=1, bias=False), 3),
    (("lstm", None), dict(num_layers=2, bidirectional=True, batch_first=True), 3),
    (("lstm", None), dict(num_layers=1, bias=False), 5),
]


@pytest.mark.parametrize(
    "kind,config,T_",
    FD_CASES,
    ids=["rnn-tanh-L2-bi-bf", "rnn-relu-L2-bi", "rnn-sigmoid-L1-nobias", "lstm-L2-bi-bf",
         "lstm-L1-nobias-T5"],
)  # fmt: skip
def test_central_differences_match_backward(kind, config, T_):
    layer = make_layer(*kind, I, H, **config)
    x, hx = inputs_for(layer, kind, T_, B)
    ours = forward_backward(layer, x, hx)  # loss: projections of output, h_n (and c_n)

    states = [s.detach().clone() for s in split_states(hx)]
    x = x.detach().clone()
    lstm = kind[0] == "lstm"

    def loss_of() -> float:
        with torch.no_grad():
            out, finals = layer(x, join_states(lstm, states))
            return projection_loss(out, *split_states(finals)).item()

    names = ["x", "h0", "c0"][: 1 + len(states)] + [n for n, _ in layer.named_parameters()]
    with torch.no_grad():
        numeric = central_differences(loss_of, [x, *states, *(p for p in layer.parameters())])
    assert len(numeric) == len(names)
    for name, g in zip(names, numeric, strict=True):
        torch.testing.assert_close(ours["grad_" + name], g, atol=1e-7, rtol=1e-6, msg=name)
        assert g.abs().max() > 0, name  # the check is not vacuous
