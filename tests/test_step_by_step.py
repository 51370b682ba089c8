"""T calls of length 1, threading the state, equal one call over the whole sequence."""

import pytest
import torch
from conftest import (
    ALL_KINDS,
    assert_results_close,
    forward_backward,
    kind_id,
    make_inputs,
    make_layer,
    tol,
)

T, B, I, H = 5, 3, 3, 4


def stepwise(layer, time_dim: int):
    """call(x, hx) running layer one time step at a time, feeding each final state back."""

    def call(x, hx):
        outs, state = [], hx
        for t in range(x.shape[time_dim]):
            out, state = layer(x.narrow(time_dim, t, 1), state)
            outs.append(out)
        return torch.cat(outs, time_dim), state

    return call


@pytest.mark.parametrize("with_states", [True, False], ids=["hx", "nohx"])
@pytest.mark.parametrize("layout", ["seq_first", "batch_first", "unbatched"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", ALL_KINDS, ids=kind_id)
def test_steps_equal_whole_sequence(kind, num_layers, layout, with_states):
    layer = make_layer(*kind, I, H, num_layers=num_layers, batch_first=layout == "batch_first")
    x, hx = make_inputs(layer, T, None if layout == "unbatched" else B, with_states=with_states)
    time_dim = 1 if layout == "batch_first" else 0
    whole = forward_backward(layer, x, hx)
    steps = forward_backward(layer, x, hx, call=stepwise(layer, time_dim))
    assert steps["out"].shape == whole["out"].shape
    assert_results_close(steps, whole, **tol(torch.float64))
    if with_states:
        assert "grad_h0" in steps
        assert ("grad_c0" in steps) == (kind[0] == "lstm")


@pytest.mark.parametrize("kind", [("rnn", "tanh"), ("lstm", None)], ids=kind_id)
def test_steps_equal_whole_sequence_float32(kind):
    layer = make_layer(*kind, I, H, num_layers=2, dtype=torch.float32)
    x, hx = make_inputs(layer, T, B)
    assert_results_close(
        forward_backward(layer, x, hx, call=stepwise(layer, 0)),
        forward_backward(layer, x, hx),
        **tol(torch.float32),
    )


@pytest.mark.parametrize("kind", [("rnn", "tanh"), ("lstm", None)], ids=kind_id)
def test_chunks_equal_whole_sequence(kind):
    """Uneven chunks (2, 1, 2) thread the state as well as single steps do."""
    layer = make_layer(*kind, I, H, num_layers=2)
    x, hx = make_inputs(layer, T, B)

    def chunked(x, hx):
        outs, state = [], hx
        for chunk in x.split([2, 1, 2], 0):
            out, state = layer(chunk, state)
            outs.append(out)
        return torch.cat(outs, 0), state

    assert_results_close(
        forward_backward(layer, x, hx, call=chunked),
        forward_backward(layer, x, hx),
        **tol(torch.float64),
    )
