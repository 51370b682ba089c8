"""torch.nn's contract at the edges: every bad input raises what torch.nn raises (and more
precisely worded), empty batches, the meta device, NaN and Inf, `_flat_weights` and weight
reparametrisations (weight_norm, parametrizations)."""

import math

import pytest
import torch
from conftest import forward_backward, make_layer, make_torch_twin, split_states
from torch import nn
from torch.nn.utils import prune

import vanishing

I, H, P = 3, 4, 2


def kinds():
    return [
        ("rnn", lambda **kw: vanishing.RNN(I, H, **kw), lambda **kw: nn.RNN(I, H, **kw)),
        ("lstm", lambda **kw: vanishing.LSTM(I, H, **kw), lambda **kw: nn.LSTM(I, H, **kw)),
        (
            "lstmp",
            lambda **kw: vanishing.LSTM(I, H, proj_size=P, **kw),
            lambda **kw: nn.LSTM(I, H, proj_size=P, **kw),
        ),
    ]


def states(kind: str, shape_h, shape_c=None, dtype=torch.float32):
    h = torch.zeros(shape_h, dtype=dtype)
    return h if kind == "rnn" else (h, torch.zeros(shape_c or shape_h, dtype=dtype))


def bad_calls(kind: str):
    """(name, input, hx) that torch.nn refuses; layers are 2-layer, float32."""
    h = P if kind == "lstmp" else H
    good_x = torch.randn(5, 3, I)
    return [
        ("input-size", torch.randn(5, 3, I + 1), None),
        ("length-0", torch.randn(0, 3, I), None),
        ("4-d", torch.randn(5, 3, I, 1), None),
        ("dtype", good_x.double(), None),
        ("h0-batch", good_x, states(kind, (2, 7, h), (2, 7, H))),
        ("h0-size", good_x, states(kind, (2, 3, h + 1), (2, 3, H))),
        ("h0-layers", good_x, states(kind, (3, 3, h), (3, 3, H))),
        ("c0-size", good_x, None if kind == "rnn" else states(kind, (2, 3, h), (2, 3, H + 1))),
        ("unbatched-h0-3d", torch.randn(5, I), states(kind, (2, 1, h), (2, 1, H))),
    ]


@pytest.mark.parametrize("kind,ours,theirs", kinds(), ids=[k[0] for k in kinds()])
def test_every_bad_input_raises_what_torch_raises(kind, ours, theirs):
    layer, twin = ours(num_layers=2), theirs(num_layers=2)
    for name, x, hx in bad_calls(kind):
        if hx is None and name == "c0-size":
            continue
        with pytest.raises(Exception) as torch_error:
            twin(x, hx)
        with pytest.raises(type(torch_error.value), match=".") as our_error:
            layer(x, hx)
        assert isinstance(our_error.value, type(torch_error.value)), name


def test_proj_size_on_an_rnn_is_torchs_value_error():
    for make in (nn.RNN, vanishing.RNN):
        with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
            make(I, H, proj_size=2)


@pytest.mark.parametrize("kind,ours,theirs", kinds(), ids=[k[0] for k in kinds()])
def test_empty_batch_runs_as_in_torch(kind, ours, theirs):
    layer = ours(num_layers=2, bidirectional=True, dtype=torch.float64)
    twin = make_torch_twin(layer)
    x = torch.randn(5, 0, I, dtype=torch.float64)
    a, b = forward_backward(layer, x), forward_backward(twin, x)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].shape == b[key].shape, key
        torch.testing.assert_close(a[key], b[key], msg=key)  # zero gradients


@pytest.mark.parametrize("kind,ours,theirs", kinds(), ids=[k[0] for k in kinds()])
def test_meta_device_gives_torchs_shapes(kind, ours, theirs):
    layer, twin = ours(num_layers=2, device="meta"), theirs(num_layers=2, device="meta")
    x = torch.randn(5, 3, I, device="meta")
    for a, b in zip(
        (layer(x)[0], *split_states(layer(x)[1])),
        (twin(x)[0], *split_states(twin(x)[1])),
        strict=True,
    ):
        assert a.device.type == "meta" and a.shape == b.shape


@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("kind,ours,theirs", kinds(), ids=[k[0] for k in kinds()])
def test_nan_and_inf_propagate_as_in_torch(kind, ours, theirs, value, path):
    layer = ours(num_layers=2)
    twin = make_torch_twin(layer)
    x = torch.randn(6, 3, I)
    x[2, 1, 0] = value  # sequence 1, step 2
    out, theirs_out = layer(x)[0], twin(x)[0]
    torch.testing.assert_close(out.isnan(), theirs_out.isnan())
    torch.testing.assert_close(out.isinf(), theirs_out.isinf())
    finite = ~(out.isnan() | out.isinf())
    torch.testing.assert_close(out[finite], theirs_out[finite], atol=1e-5, rtol=1e-4)


def test_flat_weights_follow_torch():
    layer = vanishing.LSTM(I, H, num_layers=2, proj_size=P)
    twin = make_torch_twin(layer)
    assert layer._flat_weights_names == twin._flat_weights_names
    for ours, theirs in zip(layer._flat_weights, twin._flat_weights, strict=True):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize(
    "reparametrise",
    [
        lambda m: torch.nn.utils.weight_norm(m, "weight_hh_l0"),
        lambda m: torch.nn.utils.parametrizations.weight_norm(m, "weight_hh_l0"),
        lambda m: prune.l1_unstructured(m, "weight_ih_l0", 0.5),
    ],
    ids=["weight_norm", "parametrizations.weight_norm", "prune"],
)
def test_reparametrised_weights_run_as_in_torch(reparametrise, request):
    layer = make_layer("lstm", None, I, H, num_layers=2)
    twin = make_torch_twin(layer)
    reparametrise(layer), reparametrise(twin)
    if "parametrizations" not in request.node.name:  # torch's list lags there until forward
        # the reparametrised weight is a plain tensor now: 7 Parameters out of 8, as torch's
        assert [type(w) for w in layer._flat_weights] == [type(w) for w in twin._flat_weights]
    x = torch.randn(4, 2, I, dtype=torch.float64)
    a, b = forward_backward(layer, x), forward_backward(twin, x)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)
