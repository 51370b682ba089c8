"""LSTM with projections (proj_size P > 0, LSTMP): h_t = W_hr (o_t * tanh(c_t)).

Parity with torch.nn.LSTM(proj_size=P) in float64, gradients included, on padded and packed
batches; the recording holds the projected h_t and the unprojected m_t; the hand-derived
backward passes the gradient checks; the kernel declines a projection (the reference runs).
"""

import pytest
import torch
from conftest import (
    assert_results_close,
    forward_backward,
    make_inputs,
    make_layer,
    make_torch_twin,
    packed_call,
    reference_state_grads,
    tol,
)
from torch.autograd import gradcheck, gradgradcheck

import vanishing
from vanishing.nn import kernel

F64 = torch.float64
CONFIGS = [
    dict(num_layers=1),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=2, batch_first=True, bias=False),
]


@pytest.mark.parametrize("kw", CONFIGS, ids=["1-layer", "2-layer-bi", "batch-first-no-bias"])
def test_parity_with_torch_lstm_proj(kw):
    layer = make_layer("lstm", None, 3, 5, proj_size=2, **kw)
    assert layer.weight_hr_l0.shape == (2, 5) and layer.weight_hh_l0.shape == (20, 2)
    twin = make_torch_twin(layer)
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in twin.named_parameters()]
    x, hx = make_inputs(layer, T=6, B=3)
    ours, theirs = forward_backward(layer, x, hx), forward_backward(twin, x, hx)
    assert ours["out"].shape[-1] == 2 * (2 if layer.bidirectional else 1)
    assert_results_close(ours, theirs, **tol(F64))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_parity(bidirectional):
    layer = make_layer("lstm", None, 3, 4, proj_size=3, bidirectional=bidirectional)
    twin = make_torch_twin(layer)
    x, hx = make_inputs(layer, T=5, B=3)
    call = packed_call(layer, 5, [5, 2, 4])
    twin_call = packed_call(twin, 5, [5, 2, 4])
    ours = forward_backward(layer, x, hx, call=call)
    theirs = forward_backward(twin, x, hx, call=twin_call)
    assert_results_close(ours, theirs, **tol(F64))


def test_recording_keeps_projected_and_unprojected_states():
    layer = make_layer("lstm", None, 3, 5, proj_size=2, num_layers=2)
    x, _ = make_inputs(layer, T=6, B=3, with_states=False)
    with vanishing.record(layer) as rec:
        out, _ = layer(x)
        loss = out.pow(2).sum()
        loss.backward()
    for trace in rec[""]:
        W_hr = getattr(layer, f"weight_hr_{trace.name}").detach()
        assert trace.h.shape == trace.dh.shape == (6, 3, 2)
        assert trace.m.shape == trace.c.shape == trace.dc.shape == (6, 3, 5)
        torch.testing.assert_close(trace.m, trace.o * trace.c.tanh(), **tol(F64))
        torch.testing.assert_close(trace.h, trace.m @ W_hr.t(), **tol(F64))
    reference = reference_state_grads(layer, x, lambda out: out.pow(2).sum())
    for trace in rec[""]:
        expected = reference[(trace.layer, trace.direction)]
        torch.testing.assert_close(trace.dh, expected["dh"], **tol(F64))
        torch.testing.assert_close(trace.dc, expected["dc"], **tol(F64))


def test_gradcheck_and_gradgradcheck():
    layer = make_layer("lstm", None, 2, 3, proj_size=2)
    x = torch.randn(4, 2, 2, dtype=F64, requires_grad=True)
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]

    def f(x, *p):
        out, (h_n, c_n) = torch.func.functional_call(layer, dict(zip(names, p, strict=True)), x)
        return out, h_n, c_n

    assert gradcheck(f, (x, *params))
    assert gradgradcheck(f, (x, *params))


def test_the_kernel_declines_a_projection_and_the_reference_runs():
    x = torch.randn(4, 2, 3)
    assert not kernel.supports(x, projection=True)
    layer = vanishing.LSTM(3, 4, proj_size=2)  # float32: the kernel's dtype, were it not for P
    twin = make_torch_twin(layer)
    torch.testing.assert_close(layer(x)[0], twin(x)[0], atol=1e-6, rtol=1e-5)
