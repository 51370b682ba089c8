"""Double backward: a graph of the hand-derived gradient, when one is asked for.

gradgradcheck (float64, finite differences) on every kind and both paths, padded and packed;
create_graph=True gradients that are then backpropagated (a gradient penalty), against
torch.nn in float32 and bfloat16.
"""

import pytest
import torch
from conftest import ALL_KINDS, TORCH_KINDS, kind_id, make_layer, make_torch_twin
from torch.autograd import gradgradcheck
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def flat(layer):
    """f(x, h0, *params) -> (out, h_n[, c_n]) for gradgradcheck."""
    names = [n for n, _ in layer.named_parameters()]

    def f(x, *params):
        out, finals = torch.func.functional_call(layer, dict(zip(names, params, strict=True)), x)
        return (out, *finals) if isinstance(finals, tuple) else (out, finals)

    return f


@pytest.mark.parametrize("kind", ALL_KINDS, ids=kind_id)
def test_gradgradcheck(kind, path):
    layer = make_layer(*kind, 2, 2, bidirectional=True)
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    assert gradgradcheck(flat(layer), (x, *params))


@pytest.mark.parametrize("kind", [("rnn", "tanh"), ("lstm", None)], ids=kind_id)
def test_gradgradcheck_packed(kind, path):
    layer = make_layer(*kind, 2, 3)
    x = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)

    def f(x):
        packed = pack_padded_sequence(x, [4, 1, 3], enforce_sorted=False)
        return pad_packed_sequence(layer(packed)[0], total_length=4)[0]

    assert gradgradcheck(f, (x,))


def gradient_penalty(module, x):
    """d = dL/dx with a graph (create_graph=True), then backward through sum(d^2): returns
    (d, the second-order gradients of x and of every parameter)."""
    x = x.detach().clone().requires_grad_()
    module.zero_grad(set_to_none=True)
    out = module(x)[0]
    (d,) = torch.autograd.grad(out.sin().sum(), x, create_graph=True)
    d.pow(2).sum().backward()
    return [d.detach(), x.grad] + [p.grad for p in module.parameters()]


F32 = (torch.float32, dict(atol=1e-5, rtol=1e-4))
BF16 = (torch.bfloat16, dict(atol=3e-2, rtol=3e-2))


# bfloat16 relu is left out: rounding moves pre-activations near 0 across relu's kink, where
# the two implementations' different summation orders legitimately disagree.
@pytest.mark.parametrize(
    "kind,dtype,tolerance",
    [(kind, *F32) for kind in TORCH_KINDS] + [(("rnn", "tanh"), *BF16), (("lstm", None), *BF16)],
    ids=[f"{kind_id(k)}-float32" for k in TORCH_KINDS] + ["rnn-tanh-bfloat16", "lstm-bfloat16"],
)
def test_create_graph_matches_torch(kind, dtype, tolerance, path):
    layer = make_layer(*kind, 3, 4, num_layers=2, batch_first=True, dtype=dtype)
    twin = make_torch_twin(layer)
    x = torch.rand(5, 6, 3, dtype=dtype)
    for ours, theirs in zip(gradient_penalty(layer, x), gradient_penalty(twin, x), strict=True):
        torch.testing.assert_close(ours, theirs, **tolerance)
