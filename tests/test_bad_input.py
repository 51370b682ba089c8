"""Each bad input raises its documented error type, with a message naming what was expected.

A bad size or device is an InputError, both ValueError (ours) and RuntimeError (torch.nn's);
a bad dtype an InputDtypeError, both TypeError (ours) and ValueError (torch.nn's).
"""

import math

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import vanishing
from vanishing.nn import InputDtypeError, InputError


def test_error_classes_keep_both_contracts():
    assert issubclass(InputError, ValueError) and issubclass(InputError, RuntimeError)
    assert issubclass(InputDtypeError, TypeError) and issubclass(InputDtypeError, ValueError)


I, H = 3, 4


@pytest.fixture(params=["rnn", "lstm"])
def layer(request):
    cls = vanishing.LSTM if request.param == "lstm" else vanishing.RNN
    return cls(I, H, num_layers=2)


def states(layer, B=2, dtype=torch.float32, h_shape=None, c_shape=None):
    h = torch.zeros(h_shape or (2, B, H), dtype=dtype)
    if isinstance(layer, vanishing.LSTM):
        return h, torch.zeros(c_shape or (2, B, H), dtype=dtype)
    return h


@pytest.mark.parametrize("shape", [(5,), (5, 2, I, 1)], ids=["1d", "4d"])
def test_wrong_input_rank(layer, shape):
    with pytest.raises(InputError, match=rf"input must have 3 dimensions .* got {len(shape)}"):
        layer(torch.randn(shape))


@pytest.mark.parametrize("shape", [(5, 2, I + 1), (5, I - 1)], ids=["batched", "unbatched"])
def test_wrong_feature_size(layer, shape):
    with pytest.raises(InputError, match=rf"input_size={I}, got {shape[-1]}"):
        layer(torch.randn(shape))


@pytest.mark.parametrize(
    "h_shape", [(2, 3, H), (1, 2, H), (2, 2, H + 1), (2, H)], ids=["batch", "layers", "H", "rank"]
)
def test_wrong_h0_shape(layer, h_shape):
    hx = states(layer, h_shape=h_shape)
    with pytest.raises(InputError, match=r"h_0 must have shape \(2, 2, 4\)"):
        layer(torch.randn(5, 2, I), hx)


def test_wrong_c0_shape():
    lstm = vanishing.LSTM(I, H, num_layers=2)
    with pytest.raises(InputError, match=r"c_0 must have shape \(2, 2, 4\)"):
        lstm(torch.randn(5, 2, I), states(lstm, c_shape=(2, 3, H)))


def test_unbatched_input_wants_2d_states(layer):
    with pytest.raises(InputError, match=r"h_0 must have shape \(2, 4\)"):
        layer(torch.randn(5, I), states(layer, B=1))


@pytest.mark.parametrize(
    "hx",
    [
        torch.zeros(2, 2, H),
        [torch.zeros(2, 2, H)],
        (torch.zeros(2, 2, H),) * 3,
        (torch.zeros(2, 2, H), None),
        (None, torch.zeros(2, 2, H)),
    ],
)
def test_lstm_hx_not_a_pair(hx):
    lstm = vanishing.LSTM(I, H, num_layers=2)
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        lstm(torch.randn(5, 2, I), hx)


def test_rnn_h0_not_a_tensor():
    rnn = vanishing.RNN(I, H)
    with pytest.raises(TypeError, match="h_0 must be a torch.Tensor, got tuple"):
        rnn(torch.randn(5, 2, I), (torch.zeros(1, 2, H),))


@pytest.mark.parametrize("batch_first", [False, True])
def test_sequence_length_zero(batch_first):
    for layer in (vanishing.RNN(I, H, batch_first=batch_first), vanishing.LSTM(I, H)):
        x = torch.randn((2, 0, I) if layer.batch_first else (0, 2, I))
        with pytest.raises(InputError, match="sequence of length 0.*T >= 1"):
            layer(x)
    message = "Expected sequence length to be larger than 0 in RNN"  # torch.nn's words
    with pytest.raises(RuntimeError, match=message):
        vanishing.LSTM(I, H)(torch.randn(0, I))


def test_input_dtype_differs_from_parameters(layer):
    message = "input dtype torch.float64 does not match the parameters' dtype torch.float32"
    with pytest.raises(InputDtypeError, match=message):
        layer(torch.randn(5, 2, I, dtype=torch.float64))


def test_integer_input(layer):
    with pytest.raises(InputDtypeError, match="input dtype torch.int64 does not match"):
        layer(torch.ones(5, 2, I, dtype=torch.long))


def test_h0_dtype_differs_from_input(layer):
    message = "h_0 dtype torch.float64 does not match the input's dtype torch.float32"
    with pytest.raises(InputDtypeError, match=message):
        layer(torch.randn(5, 2, I), states(layer, dtype=torch.float64))


def test_c0_dtype_differs_from_input():
    lstm = vanishing.LSTM(I, H, num_layers=2)
    c0 = torch.zeros(2, 2, H, dtype=torch.float64)
    with pytest.raises(InputDtypeError, match="c_0 dtype torch.float64 does not match"):
        lstm(torch.randn(5, 2, I), (torch.zeros(2, 2, H), c0))


@pytest.mark.parametrize("name", ["softplus", "Tanh", ""])
def test_unknown_nonlinearity(name):
    with pytest.raises(ValueError, match=r"Unknown nonlinearity .* expected one of .*sigmoid"):
        vanishing.RNN(I, H, nonlinearity=name)


@pytest.mark.parametrize("x", [[[0.0] * I] * 5, 3.0, None], ids=["list", "float", "None"])
def test_non_tensor_input(layer, x):
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        layer(x)


def packed(features=I, dtype=torch.float32, lengths=(5, 3, 2)):
    x = torch.randn(5, len(lengths), features, dtype=dtype)
    return pack_padded_sequence(x, lengths=list(lengths), enforce_sorted=False)


def test_packed_wrong_feature_size(layer):
    with pytest.raises(
        ValueError, match=rf"PackedSequence data.size\(-1\) .* input_size={I}, got 5"
    ):
        layer(packed(features=5))


def test_packed_wrong_dtype(layer):
    message = "PackedSequence data dtype torch.float64 does not match"
    with pytest.raises(InputDtypeError, match=message):
        layer(packed(dtype=torch.float64))


def test_packed_wrong_device(layer):
    data = PackedSequence(torch.zeros(8, I, device="meta"), torch.tensor([3, 3, 2]))
    with pytest.raises(InputError, match="PackedSequence data is on meta but the parameters"):
        layer(data)


def test_packed_wrong_data_rank(layer):
    with pytest.raises(InputError, match=r"data must have 2 dimensions .* got \(8, 1, 3\)"):
        layer(PackedSequence(torch.zeros(8, 1, I), torch.tensor([3, 3, 2])))


@pytest.mark.parametrize(
    "batch_sizes", [[3, 3, 1], [2, 3, 3], [4, 4, 0]], ids=["sum", "increasing", "zero"]
)
def test_packed_corrupt_batch_sizes(layer, batch_sizes):
    with pytest.raises(InputError, match=r"batch_sizes must be positive, non-increasing and sum"):
        layer(PackedSequence(torch.zeros(8, I), torch.tensor(batch_sizes)))


def test_packed_h0_of_the_wrong_batch(layer):
    hx = states(layer, B=2)  # the PackedSequence holds 3 sequences
    with pytest.raises(InputError, match=r"h_0 must have shape \(2, 3, 4\) .* PackedSequence's"):
        layer(packed(), hx)


CONSTRUCTOR_ERRORS = [
    (dict(hidden_size=0), ValueError, "hidden_size must be greater than zero, got 0"),
    (dict(num_layers=-1), ValueError, "num_layers must be greater than zero, got -1"),
    (dict(num_layers=0), ValueError, "num_layers must be greater than zero, got 0"),
    (dict(input_size=0), ValueError, "input_size must be greater than zero"),
    (dict(hidden_size=2.0), TypeError, "hidden_size should be of type int, got: float"),
    (dict(num_layers=True), TypeError, "num_layers should be of type int, got: bool"),
    (dict(dropout=1.5), ValueError, r"dropout should be a number in \[0, 1\], got 1.5"),
    (dict(dropout=-0.1), ValueError, r"dropout should be a number in \[0, 1\]"),
    (dict(dropout="0.5"), ValueError, r"dropout should be a number in \[0, 1\]"),
    (dict(bias="yes"), TypeError, "bias should be of type bool, got: str"),
    (dict(batch_first=1), TypeError, "batch_first should be of type bool, got: int"),
    (dict(bidirectional=None), TypeError, "bidirectional should be of type bool"),
]


@pytest.mark.parametrize("cls", [vanishing.RNN, vanishing.LSTM], ids=["rnn", "lstm"])
@pytest.mark.parametrize(
    "kwargs,error,message",
    CONSTRUCTOR_ERRORS,
    ids=[",".join(f"{k}={v!r}" for k, v in c[0].items()) for c in CONSTRUCTOR_ERRORS],
)
def test_constructor_errors(cls, kwargs, error, message):
    args = dict(input_size=I, hidden_size=H, num_layers=2) | kwargs
    with pytest.raises(error, match=message):
        cls(**args)


@pytest.mark.parametrize(
    "proj_size,error,message",
    [
        (-1, ValueError, "proj_size should be a positive integer or zero"),
        (H, ValueError, "proj_size has to be smaller than hidden_size, got proj_size=4"),
        (2.0, TypeError, "proj_size should be of type int, got: float"),
    ],
    ids=["negative", "not-smaller", "float"],
)
def test_lstm_proj_size_errors(proj_size, error, message):
    with pytest.raises(error, match=message):
        vanishing.LSTM(I, H, proj_size=proj_size)


@pytest.mark.parametrize("proj_size", [0, 2])
def test_rnn_refuses_proj_size_as_torch(proj_size):
    message = "proj_size argument is only supported for LSTM, not RNN or GRU"
    with pytest.raises(ValueError, match=message):
        vanishing.RNN(I, H, proj_size=proj_size)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(forget_bias=math.nan), "forget_bias must be a finite number"),
        (dict(forget_bias="1"), "forget_bias must be a finite number"),
        (dict(forget_bias=1.0, bias=False), "forget_bias needs bias=True"),
    ],
)
def test_lstm_forget_bias_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vanishing.LSTM(I, H, **kwargs)


def test_valid_input_still_runs(layer):
    """The checks reject nothing valid: 3-D, 2-D and explicit zero states all run."""
    out, _ = layer(torch.randn(5, 2, I), states(layer))
    assert out.shape == (5, 2, H)
    out, _ = layer(torch.randn(5, I))
    assert out.shape == (5, H)


@pytest.mark.parametrize("make", [lambda: vanishing.RNN(I, H), lambda: vanishing.LSTM(I, H)])
def test_weight_modified_in_place_before_backward_raises_like_torch(make):
    layer = make()
    out, _ = layer(torch.randn(5, 2, I))
    with torch.no_grad():
        layer.weight_hh_l0.mul_(2.0)  # e.g. an optimizer step between forward and backward
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()
