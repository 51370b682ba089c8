"""The inference path: under torch.no_grad / torch.inference_mode, with nothing recorded, the
layers run the kernel's forward alone (kernel.lstm_inference: no cache, no gates kept) and
give what the autograd path gives, for every layer option."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest
import torch
from conftest import ALL_KINDS, kind_id, make_inputs, make_layer, packed_call
from hypothesis import given, settings
from hypothesis import strategies as st

import vanishing
from vanishing.nn import functions, kernel

TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
MODES = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode}


@pytest.fixture(autouse=True)
def restore_kernel_choice() -> Iterator[None]:
    yield
    kernel.set_enabled(None)


def call(layer: torch.nn.Module, x: torch.Tensor, hx: object, lengths: list | None, seed: int):
    """(out, *finals) of one forward, the dropout RNG seeded; a packed batch padded again."""
    torch.manual_seed(seed)
    if lengths is None:
        out, finals = layer(x, hx)
    else:
        T = x.shape[1] if layer.batch_first else x.shape[0]
        out, finals = packed_call(layer, T, lengths)(x, hx)
    return (out, *(finals if isinstance(finals, tuple) else (finals,)))


def assert_same(a: tuple, b: tuple, dtype: torch.dtype) -> None:
    for k, (u, v) in enumerate(zip(a, b, strict=True)):
        torch.testing.assert_close(u, v, rtol=TOL[dtype], atol=TOL[dtype], msg=f"output {k}")


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(ALL_KINDS),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    T=st.integers(1, 8),
    B=st.integers(0, 6),  # 0: unbatched input
    H=st.integers(1, 19),
    num_layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    bias=st.booleans(),
    with_states=st.booleans(),
    packed=st.booleans(),
    dropout=st.sampled_from([0.0, 0.5]),
    projection=st.booleans(),
    mode=st.sampled_from(list(MODES)),
    data=st.data(),
)
def test_inference_equals_autograd_path(
    kind, dtype, T, B, H, num_layers, bidirectional, batch_first, bias, with_states, packed,
    dropout, projection, mode, data
) -> None:  # fmt: skip
    lstm = kind[0] == "lstm"
    kw = {"proj_size": H - 1} if lstm and projection and H > 1 else {}
    layer = make_layer(
        *kind, 3, H, dtype=dtype, num_layers=num_layers, bidirectional=bidirectional,
        batch_first=batch_first, bias=bias, dropout=dropout if num_layers > 1 else 0.0, **kw
    )  # fmt: skip
    layer.train(dropout > 0)  # dropout between layers acts in train mode, under no_grad too
    x, hx = make_inputs(layer, T, B or None, with_states=with_states)
    lengths = None
    if packed and B:
        lengths = sorted(data.draw(st.lists(st.integers(1, T), min_size=B, max_size=B)))[::-1]
    seed = data.draw(st.integers(0, 2**16))
    expected = call(layer, x, hx, lengths, seed)  # autograd path (Function, cache)
    assert expected[0].requires_grad
    for use_kernel in (True, False):
        kernel.set_enabled(use_kernel)
        spies = {
            name: mock.patch.object(kernel, name, wraps=getattr(kernel, name))
            for name in ("lstm_inference", "rnn_forward")
        }
        with spies["lstm_inference"] as lstm_spy, spies["rnn_forward"] as rnn_spy:
            with MODES[mode]():
                got = call(layer, x, hx, lengths, seed)
        fast = use_kernel and kernel.available() and not kw
        assert lstm_spy.called == (fast and lstm)
        assert rnn_spy.called == (fast and not lstm)
        assert not any(t.requires_grad for t in got)
        assert_same(got, tuple(t.detach() for t in expected), dtype)


@pytest.mark.parametrize("kind", ALL_KINDS, ids=kind_id)
def test_inference_path_skips_autograd_and_recording_keeps_it(kind) -> None:
    """No Function under no_grad; with recording on (or grad mode on) the Function runs."""
    if not kernel.available():
        pytest.skip("the compiled kernel is unavailable")
    layer = make_layer(*kind, 2, 5, dtype=torch.float32)
    x = torch.randn(7, 3, 2)
    function = functions.LSTMFunction if kind[0] == "lstm" else functions.RNNFunction
    with mock.patch.object(function, "apply", wraps=function.apply) as spy:
        with torch.no_grad():
            out, _ = layer(x)
        assert not spy.called
        with torch.no_grad(), vanishing.record(layer) as recording:
            layer(x)
        assert spy.call_count == 1 and recording[""][0].h is not None
    out[0, 0, 0] += 1.0  # a no_grad output is a plain tensor the caller may change


def test_inference_under_two_threads_equals_one() -> None:
    """The row blocks of the inference loop (one per thread) give the one-block result."""
    if not kernel.available():
        pytest.skip("the compiled kernel is unavailable")
    layer = make_layer("lstm", None, 3, 11, dtype=torch.float64)
    x, hx = make_inputs(layer, 9, 10)
    threads, split = torch.get_num_threads(), kernel.config("split_rows")
    results = []
    try:
        for n_threads, split_rows in ((1, 0), (2, 1), (2, 4)):
            torch.set_num_threads(n_threads)
            kernel.config("split_rows", split_rows)
            with torch.no_grad():
                results.append(call(layer, x, hx, [9, 9, 8, 6, 6, 5, 3, 2, 2, 1], 0))
    finally:
        torch.set_num_threads(threads)
        kernel.config("split_rows", split)
    for other in results[1:]:
        assert_same(other, results[0], torch.float64)
