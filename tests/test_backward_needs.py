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


def run(layer, x, hx, grads_of: str, lengths: list[int] | None = None) -> tuple[dict, list]:
    """Forward and backward of projection_loss with recording; grads_of: 'all' (backward),
    'frozen' (weights do not require grad), 'states' (autograd.grad w.r.t. x, h0, c0) or
    'initial states' (frozen, and x needs no gradient: the first layer's backward computes
    no all-steps gradient at all, as the monitor's replay).
    lengths: the batch goes in as a PackedSequence of these lengths.
    Returns ({name: gradient}, [needed of each weight_gradients call])."""
    x = x.detach().clone().requires_grad_(grads_of != "initial states")
    states = tuple(s.detach().clone().requires_grad_() for s in split_states(hx))
    hx = states if len(states) == 2 else states[0]
    for p in layer.parameters():
        p.requires_grad_(grads_of not in ("frozen", "initial states"))
        p.grad = None
    spy = mock.Mock(wraps=projection.weight_gradients)
    with contextlib.ExitStack() as stack:
        for module in (kernel, rnn, lstm):  # every module that calls it
            stack.enter_context(mock.patch.object(module, "weight_gradients", spy))
        recording = stack.enter_context(vanishing.record(layer))
        if lengths is None:
            out, finals = layer(x, hx)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
            out, finals = layer(packed, hx)
            out = out.data
        loss = projection_loss(out, *split_states(finals))
        inputs = (x, *states)
        if grads_of == "states":
            grads = torch.autograd.grad(loss, inputs)
        elif grads_of == "initial states":
            grads = (None, *torch.autograd.grad(loss, states))
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


@pytest.mark.parametrize("use_kernel", [True, False], ids=["kernel", "reference"])
@pytest.mark.parametrize("kind", ALL_KINDS, ids=kind_id)
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_a_backward_for_the_states_alone_runs_no_all_steps_gemm(kind, use_kernel, packed) -> None:
    """With frozen weights and an input that needs no gradient (the monitor's replay), the
    first layer calls no weight_gradients (the kernel then keeps one step of dz, not T), and
    dL/dh_t, dL/dc_t and the initial states' gradients are unchanged to the bit."""
    if use_kernel and not kernel.available():
        pytest.skip("the compiled kernel is unavailable")
    kernel.set_enabled(use_kernel)
    layer = make_layer(kind[0], kind[1], 3, 6, num_layers=2, bidirectional=True)
    x, hx = make_inputs(layer, 7, 4)
    lengths = [7, 2, 5, 4] if packed else None
    full, _ = run(layer, x, hx, "all", lengths)
    part, needed_part = run(layer, x, hx, "initial states", lengths)
    # layer 1's two directions pass dx on to layer 0; layer 0 needs nothing of all steps
    assert [n.dx for n in needed_part if any(n[:4])] == [True, True]
    assert len(needed_part) == (2 if use_kernel else 4)  # the kernel skips the call
    for name, value in part.items():
        if value is not None:
            torch.testing.assert_close(value, full[name], rtol=0, atol=0, msg=name)
    assert {k for k, v in part.items() if v is not None} == {
        k for k in full if k.startswith("trace") or k in ("h0", "c0")
    }
