"""torch.compile, torch.export, torch.func and torch.vmap on the layers, against torch.nn.

Every case runs the same weights through vanishing and torch.nn and compares outputs and
gradients (float32). The compile tests are few and small: a compile costs seconds.
"""

import pytest
import torch
from conftest import make_torch_twin
from torch.func import functional_call, grad, jacrev, vjp
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import vanishing

F32 = {"atol": 1e-5, "rtol": 1e-4}
T, B, I, H = 5, 3, 3, 4


@pytest.fixture(params=["rnn", "lstm"])
def pair(request):
    """(vanishing layer, torch.nn twin with the same weights), float32, 2 layers."""
    layer = (vanishing.LSTM if request.param == "lstm" else vanishing.RNN)(I, H, num_layers=2)
    return layer, make_torch_twin(layer)


def forward_backward(module, x):
    """(output, dL/dx, dL/d(first weight)) of L = sum(output^2)."""
    x = x.detach().clone().requires_grad_()
    module.zero_grad(set_to_none=True)
    out = module(x)[0]
    out.pow(2).sum().backward()
    return out.detach(), x.grad, next(module.parameters()).grad


def test_compile_fullgraph_matches_torch(pair):
    """Default backend (inductor), one graph for forward and backward: no graph break."""
    layer, twin = pair
    x = torch.randn(T, B, I)
    compiled = torch.compile(layer, fullgraph=True)
    for ours, theirs in zip(forward_backward(compiled, x), forward_backward(twin, x), strict=True):
        torch.testing.assert_close(ours, theirs, **F32)


def test_compile_default_mode_packed_and_recording():
    """Default mode may break the graph: a PackedSequence (its lengths are data) still runs,
    and recording works (the recorded call runs eagerly)."""
    layer = vanishing.LSTM(I, H, bidirectional=True)
    twin = make_torch_twin(layer)
    x, lengths = torch.randn(T, B, I), [5, 2, 4]

    def run(module):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        return pad_packed_sequence(module(packed)[0], total_length=T)[0]

    compiled = torch.compile(layer, backend="aot_eager")
    torch.testing.assert_close(run(compiled), run(twin), **F32)
    with vanishing.record(layer) as rec:
        run(compiled).sum().backward()
    assert [t.name for t in rec[""]] == ["l0", "l0_reverse"] and rec[""][0].dc is not None


def test_recording_refused_where_it_cannot_run():
    layer = vanishing.LSTM(I, H, record=True)
    x = torch.randn(T, B, I)
    with pytest.raises(Exception, match="needs eager mode"):
        torch.compile(layer, backend="aot_eager", fullgraph=True)(x)
    with pytest.raises(RuntimeError, match="needs eager mode"):
        torch.export.export(layer, (x,))


def test_export_matches_torch(pair):
    layer, twin = pair
    x = torch.randn(T, B, I)
    program = torch.export.export(layer, (x,))
    assert any("vanishing." in str(node.target) for node in program.graph.nodes)  # our loops
    x2 = torch.randn(T, B, I)
    for ours, theirs in zip(program.module()(x2), twin(x2), strict=True):
        torch.testing.assert_close(ours, theirs, **F32)


def loss_of(module):
    def loss(params, x):
        out, finals = functional_call(module, params, (x,))
        return out.pow(2).sum() + sum(
            f.sum() for f in (finals if isinstance(finals, tuple) else (finals,))
        )

    return loss


def test_func_grad_jacrev_vjp_match_torch(pair):
    layer, twin = pair
    x = torch.randn(T, B, I)
    ours = grad(loss_of(layer))(dict(layer.named_parameters()), x)
    theirs = grad(loss_of(twin))(dict(twin.named_parameters()), x)
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], **F32, msg=name)
    j_ours = jacrev(lambda x: layer(x)[0])(x)  # (T, B, H, T, B, I)
    j_theirs = jacrev(lambda x: twin(x)[0])(x)
    torch.testing.assert_close(j_ours, j_theirs, **F32)
    v = torch.randn(T, B, H)
    out, pullback = vjp(lambda x: layer(x)[0], x)
    torch.testing.assert_close(pullback(v)[0], vjp(lambda x: twin(x)[0], x)[1](v)[0], **F32)


def test_vmap_and_per_sample_gradients(pair):
    """vmap over unbatched and batched inputs, and per-sample gradients vmap(grad): the
    oracle is a loop over torch.nn (which has no batching rule for a stacked LSTM / RNN)."""
    layer, twin = pair
    params, twin_params = dict(layer.named_parameters()), dict(twin.named_parameters())
    for xs in (torch.randn(6, T, I), torch.randn(4, T, B, I)):  # unbatched, batched
        looped = torch.stack([twin(x)[0] for x in xs])
        torch.testing.assert_close(torch.vmap(lambda x: layer(x)[0])(xs), looped, **F32)
        ours = torch.vmap(grad(loss_of(layer)), in_dims=(None, 0))(params, xs)
        for name in ours:
            theirs = torch.stack([grad(loss_of(twin))(twin_params, x)[name] for x in xs])
            torch.testing.assert_close(ours[name], theirs, **F32, msg=name)


def test_jit_script_is_refused_with_one_clear_error(pair):
    layer, _ = pair
    with pytest.raises(RuntimeError, match="cannot be compiled by torch.jit.script.*torch.compile"):
        torch.jit.script(layer)
