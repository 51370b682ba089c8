"""PackedSequence input: outputs, final states and every gradient equal torch.nn's (float64).

Random lengths (all equal and all 1 included), both directions, several layers, with and
without initial states, sorted and unsorted batches; on the kernel and the reference (the
`path` fixture). The sigmoid RNN, which torch.nn lacks, against conftest.reference_forward.
"""

import pytest
import torch
from conftest import (
    TORCH_KINDS,
    assert_results_close,
    forward_backward,
    kind_id,
    make_inputs,
    make_layer,
    make_torch_twin,
    packed_call,
    reference_forward,
    split_states,
    tol,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
)

pytestmark = pytest.mark.usefixtures("path")  # kernel and reference (conftest.path)

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@st.composite
def cases(draw, kinds):
    """(kind, config, T, lengths, with_states, enforce_sorted, seed)."""
    kind = draw(st.sampled_from(kinds))
    config = dict(
        num_layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        bias=draw(st.booleans()),
    )
    T, B = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    lengths = draw(
        st.one_of(
            st.lists(st.integers(1, T), min_size=B, max_size=B),
            st.just([T] * B),
            st.just([1] * B),
        )
    )
    enforce_sorted = draw(st.booleans())
    if enforce_sorted:
        lengths = sorted(lengths, reverse=True)
    return kind, config, T, lengths, draw(st.booleans()), enforce_sorted, draw(st.integers(0, 999))


def build(case):
    kind, config, T, lengths, with_states, _, seed = case
    torch.manual_seed(seed)
    layer = make_layer(*kind, 3, 4, **config)
    x, hx = make_inputs(layer, T, len(lengths), with_states=with_states)
    return layer, x, hx


def check_against_torch(case):
    layer, x, hx = build(case)
    T, lengths, enforce_sorted = case[2], case[3], case[5]
    ours = forward_backward(layer, x, hx, call=packed_call(layer, T, lengths, enforce_sorted))
    twin = make_torch_twin(layer)
    theirs = forward_backward(twin, x, hx, call=packed_call(twin, T, lengths, enforce_sorted))
    assert_results_close(ours, theirs, **tol(torch.float64))


@SETTINGS
@given(cases([("lstm", None)]))
def test_lstm_packed_matches_torch(case):
    check_against_torch(case)


@SETTINGS
@given(cases([("rnn", "tanh"), ("rnn", "relu")]))
def test_rnn_packed_matches_torch(case):
    check_against_torch(case)


@SETTINGS
@given(cases([("rnn", "sigmoid")]))
def test_sigmoid_rnn_packed_matches_autograd_reference(case):
    layer, x, hx = build(case)
    T, lengths, enforce_sorted = case[2], case[3], case[5]
    ours = forward_backward(layer, x, hx, call=packed_call(layer, T, lengths, enforce_sorted))
    ref = forward_backward(
        layer, x, hx, call=lambda x, hx: reference_forward(layer, x, hx, lengths=lengths)
    )
    assert_results_close(ours, ref, **tol(torch.float64))


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=kind_id)
def test_reference_with_lengths_matches_torch(kind):
    """The oracle's variable-length loop is torch.nn's packed semantics."""
    ours = make_layer(*kind, 3, 4, num_layers=2, bidirectional=True)
    twin = make_torch_twin(ours)
    lengths = [2, 5, 1, 4]
    x, hx = make_inputs(ours, 5, len(lengths))
    a = forward_backward(twin, x, hx, call=packed_call(twin, 5, lengths))
    b = forward_backward(
        twin, x, hx, call=lambda x, hx: reference_forward(twin, x, hx, lengths=lengths)
    )
    assert_results_close(a, b, **tol(torch.float64))


@pytest.mark.parametrize("enforce_sorted", [True, False], ids=["sorted", "unsorted"])
@pytest.mark.parametrize("kind", TORCH_KINDS, ids=kind_id)
def test_output_is_torchs_packed_sequence(kind, enforce_sorted):
    """Same data layout, batch_sizes and indices; h_n, c_n in the caller's order."""
    ours = make_layer(*kind, 3, 4, num_layers=2, bidirectional=True)
    theirs = make_torch_twin(ours)
    seqs = [torch.randn(n, 3, dtype=torch.float64) for n in (4, 2, 3)]
    if enforce_sorted:
        seqs.sort(key=len, reverse=True)
    packed = pack_sequence(seqs, enforce_sorted=enforce_sorted)
    (out, finals), (out_t, finals_t) = ours(packed), theirs(packed)
    assert type(out) is PackedSequence
    assert torch.equal(out.batch_sizes, out_t.batch_sizes)
    for name in ("sorted_indices", "unsorted_indices"):
        a, b = getattr(out, name), getattr(out_t, name)
        assert (a is None and b is None) or torch.equal(a, b), name
    torch.testing.assert_close(out.data, out_t.data, **tol(torch.float64))
    for a, b in zip(split_states(finals), split_states(finals_t), strict=True):
        torch.testing.assert_close(a, b, **tol(torch.float64))
    # each sequence's h_n is its own top-layer output at its last step (forward direction)
    for b, seq in enumerate(seqs):
        alone, _ = ours(seq)
        torch.testing.assert_close(split_states(finals)[0][-2, b], alone[-1, :4])


@pytest.mark.parametrize("kind", [("rnn", "tanh"), ("lstm", None)], ids=kind_id)
def test_equal_lengths_packed_equals_padded(kind):
    layer = make_layer(*kind, 3, 4, num_layers=2, bidirectional=True)
    x, hx = make_inputs(layer, 5, 3)
    padded = forward_backward(layer, x, hx)
    packed = forward_backward(layer, x, hx, call=packed_call(layer, 5, [5, 5, 5]))
    assert_results_close(packed, padded, **tol(torch.float64))


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=kind_id)
def test_float32_packed_matches_torch(kind):
    ours = make_layer(*kind, 3, 8, num_layers=2, bidirectional=True, dtype=torch.float32)
    theirs = make_torch_twin(ours)
    lengths = [7, 3, 9, 1, 9]
    x, hx = make_inputs(ours, 9, len(lengths))
    a = forward_backward(ours, x, hx, call=packed_call(ours, 9, lengths))
    b = forward_backward(theirs, x, hx, call=packed_call(theirs, 9, lengths))
    assert_results_close(a, b, **tol(torch.float32))


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=kind_id)
def test_packed_dropout_draws_torchs_masks(kind):
    """torch.nn drops out the packed data between layers; the same RNG state, the same masks."""
    ours = make_layer(*kind, 3, 4, num_layers=3, bidirectional=True, dropout=0.4).train()
    theirs = make_torch_twin(ours)
    lengths = [2, 5, 3]
    x, hx = make_inputs(ours, 5, len(lengths))

    def seeded(module):
        call = packed_call(module, 5, lengths)
        return lambda *a: (torch.manual_seed(11), call(*a))[1]

    a = forward_backward(ours, x, hx, call=seeded(ours))
    b = forward_backward(theirs, x, hx, call=seeded(theirs))
    assert_results_close(a, b, **tol(torch.float64))


@pytest.mark.parametrize("bidirectional", [False, True], ids=["L2", "L2-bi"])
@pytest.mark.parametrize("kind", [("rnn", "sigmoid"), ("lstm", None)], ids=kind_id)
def test_trace_covers_each_sequences_own_steps(kind, bidirectional):
    """A packed batch's trace is, sequence by sequence, the trace of that sequence run alone,
    zero beyond its length; lengths and batch order are the caller's."""
    layer = make_layer(*kind, 3, 4, num_layers=2, bidirectional=bidirectional, record=True)
    lengths, T = [3, 5, 1, 4], 5
    x, hx = make_inputs(layer, T, len(lengths))
    states = split_states(hx)
    D = 2 if bidirectional else 1
    # a loss that sums over sequences, so each sequence's gradients are its own
    weights = torch.randn(T, len(lengths), D * layer.hidden_size, dtype=x.dtype)
    packed, _ = layer(pack_padded_sequence(x, lengths, enforce_sorted=False), hx)
    out, _ = pad_packed_sequence(packed, total_length=T)
    (out * weights).sum().backward()
    traces = layer.traces
    fields = ("h", "c", "i", "f", "g", "o", "dh", "dc")
    for b, n in enumerate(lengths):
        alone_hx = tuple(s[:, b : b + 1].contiguous() for s in states)
        out_b, _ = layer(x[:n, b : b + 1], alone_hx if len(alone_hx) == 2 else alone_hx[0])
        (out_b * weights[:n, b : b + 1]).sum().backward()
        for full, alone in zip(traces, layer.traces, strict=True):
            assert torch.equal(full.lengths, torch.tensor(lengths))
            for field in fields:
                a, b_alone = getattr(full, field), getattr(alone, field)
                if a is None:
                    assert b_alone is None
                    continue
                torch.testing.assert_close(a[:n, b : b + 1], b_alone, **tol(x.dtype), msg=field)
                assert not a[n:, b].any(), f"{field} beyond the length of sequence {b}"
            torch.testing.assert_close(full.h0[b : b + 1], alone.h0)
    part = traces[0].select(slice(1, 3))
    assert torch.equal(part.lengths, torch.tensor(lengths[1:3]))
    assert part.h.shape == (T, 2, layer.hidden_size)
