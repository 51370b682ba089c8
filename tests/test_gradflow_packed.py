"""gradflow on variable-length traces (PackedSequence input), float64.

A packed batch's measurements are those of its sequences run alone, combined as documented:
at lag l (counted back from each sequence's own last step) or at step t (counted from its
first), the mean over the sequences long enough to have it, and their count. Every sequence
reads a loss at its own last step only (its h_n).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import forward_backward, kind_id, make_layer, packed_call
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import vanishing
from vanishing import gradflow as gf

F64 = torch.float64
LENGTHS = [7, 3, 9, 1, 5]  # unsorted, with a sequence of one step
T = max(LENGTHS)
KINDS = [("rnn", "tanh"), ("rnn", "sigmoid"), ("lstm", None)]


def last_step_loss(w: torch.Tensor):  # noqa: ANN201
    """E = sum(h_n * w): each sequence's loss reads its own last step (h_n) only."""
    return lambda out, h_n, *c_n: (h_n * w).sum()


def setup(kind: tuple[str, str | None], H: int, seed: int = 0):  # noqa: ANN201
    """(layer, x (T, B, 2), w (L*D, B, H), packed traces, traces of each sequence alone)."""
    torch.manual_seed(seed)
    extra = {"forget_bias": 1.0} if kind[0] == "lstm" else {}
    layer = make_layer(*kind, 2, H, num_layers=2, bidirectional=True, **extra)
    x = torch.randn(T, len(LENGTHS), 2, dtype=F64)
    w = torch.randn(4, len(LENGTHS), H, dtype=F64)
    with vanishing.record(layer) as rec:
        forward_backward(layer, x, call=packed_call(layer, T, LENGTHS), loss_fn=last_step_loss(w))
        packed = rec[""]
    alone = []
    for b, n in enumerate(LENGTHS):
        with vanishing.record(layer) as rec:
            forward_backward(layer, x[:n, b : b + 1], loss_fn=last_step_loss(w[:, b : b + 1]))
            alone.append(rec[""])
    return layer, x, w, packed, alone


def combined(curves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Index i of each sequence's curve (of its own length) averaged over the sequences that
    have it, and how many they are."""
    mean, count = np.full(T, np.nan), np.zeros(T, dtype=int)
    for i in range(T):
        have = [c[i] for c, n in zip(curves, LENGTHS, strict=True) if n > i]
        count[i], mean[i] = len(have), np.mean(have) if have else np.nan
    return mean, count


@pytest.mark.parametrize("detail", ["norms", "exact"])
@pytest.mark.parametrize("kind", KINDS, ids=kind_id)
def test_packed_lag_profile_is_each_sequence_alone_combined(kind, detail: str) -> None:
    layer, _, _, packed, alone = setup(kind, H=5)
    assert torch.equal(packed[0].lengths, torch.tensor(LENGTHS))
    for k, trace in enumerate(packed):  # two layers, both directions
        p = gf.lag_profile(layer, trace, jacobian=detail != "norms", exact=detail == "exact")
        singles = [gf.lag_profile(layer, a[k], exact=True) for a in alone]
        fields = ["dh_norm", "dc_norm"] + (["jacobian_norm"] if detail == "exact" else [])
        for field in fields:
            if getattr(p, field) is None:
                continue
            expected, count = combined([getattr(s, field) for s in singles])
            np.testing.assert_allclose(getattr(p, field), expected, rtol=1e-12, err_msg=field)
            np.testing.assert_array_equal(p.count, count)
        assert p.horizon == gf.gradient_horizon(p.norm)
        if p.bound is not None:  # the RNN's bound does not depend on the data
            W = layer.get_parameter("weight_hh_" + trace.name)
            np.testing.assert_array_equal(p.bound, gf.rnn_bound(W, kind[1], T - 1))


def test_packed_lstm_terms_and_jacobians_are_each_sequence_alone() -> None:
    layer, _, _, packed, alone = setup(("lstm", None), H=5)
    for k, trace in enumerate(packed):
        t = gf.lstm_terms(layer, trace, exact=True)
        singles = [gf.lstm_terms(layer, a[k], exact=True) for a in alone]
        for field in ("A", "B", "C", "D", "total", "forget_mean"):
            expected, count = combined([getattr(s, field) for s in singles])
            np.testing.assert_allclose(getattr(t, field), expected, rtol=1e-12, atol=1e-300)
            np.testing.assert_array_equal(t.count, count)
        forget = np.sort(np.concatenate([s.forget for s in singles]))
        np.testing.assert_allclose(np.sort(t.forget), forget, rtol=1e-15)
        # the matrices: row [t-1, b] is step t of sequence b, zero beyond its length
        for M, *M_alone in zip(
            gf.lstm_jacobians(layer, trace),
            *(gf.lstm_jacobians(layer, a[k]) for a in alone),
            strict=True,
        ):
            for b, n in enumerate(LENGTHS):
                torch.testing.assert_close(M[:n, b], M_alone[b][:, 0], rtol=1e-12, atol=1e-15)
                assert not M[n:, b].any()


@pytest.mark.parametrize("kind", [("rnn", "tanh"), ("lstm", None)], ids=kind_id)
def test_packed_estimates_stay_within_their_tolerance(kind) -> None:
    """'terms' on a packed batch against 'exact' on each sequence alone: lower bounds, at most
    15 % below (tests/test_estimates.py's tolerance). H = 20 exceeds the sweep's 16-vector
    basis and the 6 Lanczos steps, so nothing is exact by construction."""
    layer, _, _, packed, alone = setup(kind, H=20, seed=1)
    for k, trace in enumerate(packed):
        p = gf.lag_profile(layer, trace)
        assert p.method == "estimate"
        exact, _ = combined([gf.lag_profile(layer, a[k], exact=True).jacobian_norm for a in alone])
        ratio = p.jacobian_norm / exact
        assert np.all(ratio <= 1 + 1e-8) and np.all(ratio >= 0.85), ratio
        if kind[0] == "lstm":
            t = gf.lstm_terms(layer, trace)
            singles = [gf.lstm_terms(layer, a[k], exact=True) for a in alone]
            for field in ("A", "C", "D", "total"):
                exact, _ = combined([getattr(s, field) for s in singles])
                est = getattr(t, field)
                assert np.all(est <= exact * (1 + 1e-8)) and np.all(est >= 0.85 * exact), field


class PackedLSTM(nn.Module):
    """A one-layer LSTM (torch.nn's, bidirectional, unless given) on a PackedSequence made
    inside, and a read-out of h_n."""

    def __init__(self, lstm: nn.Module | None = None) -> None:
        super().__init__()
        self.lstm = lstm or nn.LSTM(2, 4, bidirectional=True, dtype=F64)
        self.head = nn.Linear(4 * (2 if self.lstm.bidirectional else 1), 1, dtype=F64)

    def forward(self, x: torch.Tensor, lengths: list[int]) -> torch.Tensor:  # x (T, B, 2)
        _, (h_n, _) = self.lstm(pack_padded_sequence(x, lengths, enforce_sorted=False))
        return self.head(h_n.transpose(0, 1).flatten(1))  # (B, 1)


def test_profile_of_a_model_that_feeds_a_packed_sequence_to_torch_lstm() -> None:
    torch.manual_seed(2)
    model = PackedLSTM()
    x = torch.randn(T, len(LENGTHS), 2, dtype=F64)
    result = profile_sum(model, (x, LENGTHS))["lstm"]
    singles = [profile_sum(model, (x[:n, b : b + 1], [n]))["lstm"] for b, n in enumerate(LENGTHS)]
    for d, p in enumerate(result):
        assert torch.equal(p.trace.lengths, torch.tensor(LENGTHS))
        for field in ("dh_norm", "dc_norm", "jacobian_norm"):
            expected, count = combined([getattr(s[d].lags, field) for s in singles])
            np.testing.assert_allclose(getattr(p.lags, field), expected, rtol=1e-12)
            np.testing.assert_array_equal(p.lags.count, count)
        for field in ("A", "C", "D", "total"):
            expected, _ = combined([getattr(s[d].terms, field) for s in singles])
            np.testing.assert_allclose(getattr(p.terms, field), expected, rtol=1e-12, atol=1e-300)
    # a PackedSequence given as the input itself (one argument, cast by dtype)
    packed = pack_padded_sequence(x.float(), LENGTHS, enforce_sorted=False)
    (fwd, _) = gf.profile(
        nn.LSTM(2, 4, bidirectional=True), packed, lambda o: o[1][0].sum(), dtype=F64
    )[""]
    assert fwd.trace.h.dtype == F64 and torch.equal(fwd.trace.lengths, torch.tensor(LENGTHS))


def profile_sum(model: nn.Module, inputs: tuple) -> dict:
    return gf.profile(model, inputs, lambda y: y.sum(), detail="exact")


def test_monitor_measures_packed_input(tmp_path) -> None:  # noqa: ANN001
    """torch.nn.LSTM (replayed) and vanishing.LSTM (recorded) fed a PackedSequence: the
    monitor's norms and counts are profile()'s."""
    for lstm in (nn.LSTM(2, 4, bidirectional=True, dtype=F64), vanishing.LSTM(2, 4, dtype=F64)):
        model = PackedLSTM(lstm)
        x = torch.randn(T, len(LENGTHS), 2, dtype=F64)
        mon = gf.monitor(model, every=1, path=tmp_path / "m.jsonl")
        mon.on_step_start(0, model)
        model(x, LENGTHS).sum().backward()
        entry = mon.on_step_end(0, model)["gradflow"]
        expected = gf.profile(model, (x, LENGTHS), lambda y: y.sum(), detail="norms")["lstm"]
        for p in expected:
            m = entry[f"lstm.{p.trace.name}"]
            np.testing.assert_allclose(m["dc_norm"], p.lags.dc_norm, rtol=1e-5)
            assert m["count"] == p.lags.count.tolist() and m["horizon"] == p.lags.horizon
    line = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[-1])
    assert line["gradflow"]["lstm.l0"]["count"][0] == len(LENGTHS)
