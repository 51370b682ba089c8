"""Backward computes only the gradients autograd will use: frozen weights, or
torch.autograd.grad with respect to the states only, skip the weight-gradient GEMMs, and the
gradients that are asked for (and the recording) are unchanged."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from unittest import mock

import pytest
import torch
from conftest import ALL_KINDS, kind_id, make_inputs, make_layer, projection_loss, split_states

import vanishing
from vanishing.nn import kernel, lstm, projection, rnn

FIELDS = ("h", "dh", "dc")


@pytest.fixture(autouse=True)
def restore_kernel_choice() -> Iterator[None]:
    yield
    kernel.set_enabled(None)


def run(layer, x, hx, grads_of: str) -> tuple[dict, list]:
    """Forward and backward of projection_loss with recording; grads_of: 'all' (backward),
    'frozen' (weights do not require grad) or 'states' (autograd.grad w.r.t. x, h0, c0).
    Returns ({name: gradient}, [needed of each weight_gradients call])."""
    x = x.detach().clone().requires_grad_()
    states = tuple(s.detach().clone().requires_grad_() for s in split_states(hx))
    hx = states if len(states) == 2 else states[0]
    for p in layer.parameters():
        p.requires_grad_(grads_of != "frozen")
        p.grad = None
    spy = mock.Mock(wraps=projection.weight_gradients)
    with contextlib.ExitStack() as stack:
        for module in (kernel, rnn, lstm):  # every module that calls it
            stack.enter_context(mock.patch.object(module, "weight_gradients", spy))
        recording = stack.enter_context(vanishing.record(layer))
        out, finals = layer(x, hx)
        loss = projection_loss(out, *split_states(finals))
        inputs = (x, *states)
        if grads_of == "states":
            grads = torch.autograd.grad(loss, inputs)
        else:
            loss.backward()
            grads = tuple(t.grad for t in inputs)
    found = dict(zip(("x", "h0", "c0"), grads, strict=False))
    found |= {name: p.grad for name, p in layer.named_parameters()}
    for k, trace in enumerate(recording[""]):
        found |= {
            f"trace{k}.{f}": getattr(trace, f) for f in FIELDS if getattr(trace, f) is not None
        }
    return found, [call.args[4] for call in spy.call_args_list]


@pytest.mark.parametrize("use_kernel", [True, False], ids=["kernel", "reference"])
@pytest.mark.parametrize("kind", [*ALL_KINDS, ("lstm", "proj")], ids=kind_id)
@pytest.mark.parametrize("grads_of", ["frozen", "states"])
def test_state_gradients_skip_weight_gradients(kind, use_kernel, grads_of) -> None:
    if use_kernel and not kernel.available():
        pytest.skip("the compiled kernel is unavailable")
    kernel.set_enabled(use_kernel)
    kw = {"proj_size": 4} if kind[1] == "proj" else {}  # LSTMP: the reference, dW_hr skipped too
    layer = make_layer(kind[0], kind[1], 3, 6, num_layers=2, bidirectional=True, **kw)
    x, hx = make_inputs(layer, 7, 4)
    full, needed_full = run(layer, x, hx, "all")
    part, needed_part = run(layer, x, hx, grads_of)
    assert len(needed_part) == len(needed_full) == 4  # one backward per layer and direction
    assert all(all(n[:4]) for n in needed_full)
    # no weight gradient; dx only where the input is a state to pass on (layer 1's x, and x)
    assert all(not any(n[1:4]) for n in needed_part), needed_part  # dW_ih, dW_hh, db
    for name, value in part.items():
        if name in full and full[name] is not None and value is not None:
            torch.testing.assert_close(value, full[name], rtol=0, atol=0, msg=name)
    assert {k for k, v in part.items() if v is not None} == {
        k for k in full if not k.startswith(("weight", "bias"))
    }
