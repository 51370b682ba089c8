"""Property tests: random shapes and options, outputs and gradients equal torch.nn's (float64)."""

import torch
from conftest import (
    assert_results_close,
    forward_backward,
    make_inputs,
    make_layer,
    make_torch_twin,
    reference_forward,
    tol,
)
from hypothesis import given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


@st.composite
def cases(draw, nonlinearities):
    kind = draw(st.sampled_from(nonlinearities))
    config = dict(
        num_layers=draw(st.integers(1, 2)),
        bidirectional=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        bias=draw(st.booleans()),
    )
    shape = dict(
        T=draw(st.integers(1, 8)),
        B=draw(st.one_of(st.none(), st.integers(1, 4))),  # None: unbatched input
        I=draw(st.integers(1, 4)),
        H=draw(st.integers(1, 5)),
    )
    return kind, config, shape, draw(st.booleans()), draw(st.integers(0, 2**31 - 1))


def build(case):
    kind, config, shape, with_states, seed = case
    torch.manual_seed(seed)
    layer = make_layer(*kind, shape["I"], shape["H"], **config)
    x, hx = make_inputs(layer, shape["T"], shape["B"], with_states=with_states)
    return layer, x, hx


def expected_output_shape(layer, shape) -> tuple[int, ...]:
    D = 2 if layer.bidirectional else 1
    T, B, H = shape["T"], shape["B"], shape["H"]
    if B is None:
        return (T, D * H)
    return (B, T, D * H) if layer.batch_first else (T, B, D * H)


@SETTINGS
@given(cases([("lstm", None)]))
def test_lstm_matches_torch(case):
    layer, x, hx = build(case)
    ours = forward_backward(layer, x, hx)
    assert ours["out"].shape == expected_output_shape(layer, case[2])
    assert_results_close(ours, forward_backward(make_torch_twin(layer), x, hx), **tol(x.dtype))


@SETTINGS
@given(cases([("rnn", "tanh"), ("rnn", "relu")]))
def test_rnn_matches_torch(case):
    layer, x, hx = build(case)
    ours = forward_backward(layer, x, hx)
    assert ours["out"].shape == expected_output_shape(layer, case[2])
    assert_results_close(ours, forward_backward(make_torch_twin(layer), x, hx), **tol(x.dtype))


@SETTINGS
@given(cases([("rnn", "sigmoid")]))
def test_sigmoid_rnn_matches_autograd_reference(case):
    layer, x, hx = build(case)
    ours = forward_backward(layer, x, hx)
    ref = forward_backward(layer, x, hx, call=lambda x, hx: reference_forward(layer, x, hx))
    assert_results_close(ours, ref, **tol(x.dtype))
