"""vanishing.profile on models built from torch.nn layers (float64)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import reference_state_grads
from torch import nn

import vanishing
from vanishing import gradflow as gf
from vanishing.gradflow import LayerProfile, profile

F64 = torch.float64


class LastStep(nn.Module):
    """torch.nn.LSTM (batch_first) -> Linear on the last step's output."""

    def __init__(self, I: int = 3, H: int = 5) -> None:
        super().__init__()
        self.lstm = nn.LSTM(I, H, batch_first=True, dtype=F64)
        self.head = nn.Linear(H, 1, dtype=F64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (B, T, I)
        out, _ = self.lstm(x)  # (B, T, H)
        return self.head(out[:, -1])  # (B, 1)


def mse(y: torch.Tensor) -> torch.Tensor:
    return (y - 1.0).pow(2).mean()


def test_profile_torch_lstm_matches_autograd_and_leaves_model_unchanged() -> None:
    torch.manual_seed(0)
    model = LastStep()
    x = torch.randn(4, 9, 3, dtype=F64)  # (B, T, I)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    before = {n: (p.detach().clone(), p.grad.clone()) for n, p in model.named_parameters()}
    result = profile(model, x, mse)
    assert list(result) == ["lstm"]
    (lp,) = result["lstm"]
    assert isinstance(lp, LayerProfile) and (lp.name, lp.kind) == ("lstm", "LSTM")
    twin = copy.deepcopy(model)  # the reference's gradients reach its parameters
    grads = reference_state_grads(twin.lstm, x, lambda out: mse(twin.head(out[:, -1])))[(0, 0)]
    dh, dc = grads["dh"], grads["dc"]  # (T, B, H) each, time order
    torch.testing.assert_close(lp.trace.dh, dh, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(lp.trace.dc, dc, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lp.lags.dh_norm, dh.norm(dim=2).mean(dim=1).flip(0), rtol=1e-12)
    np.testing.assert_allclose(lp.lags.dc_norm, dc.norm(dim=2).mean(dim=1).flip(0), rtol=1e-12)
    assert lp.terms is not None and lp.terms.total.shape == (9,)
    assert lp.lags.horizon == gf.gradient_horizon(lp.lags.dc_norm)
    # the user's model: same classes, parameters and grads
    assert type(model.lstm) is nn.LSTM
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), before[n][0], rtol=0, atol=0)
        torch.testing.assert_close(p.grad, before[n][1], rtol=0, atol=0)


def test_profile_stacked_bidirectional_rnn_tuple_inputs_and_gru_left_alone() -> None:
    torch.manual_seed(1)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(2, 3, dtype=F64)
            self.rnn = nn.RNN(3, 4, num_layers=2, bidirectional=True, dtype=F64)

        def forward(self, x: torch.Tensor, scale: float) -> torch.Tensor:
            out, _ = self.rnn(self.gru(x)[0])  # (T, B, 8)
            return scale * out[-1]

    x = torch.randn(6, 2, 2, dtype=F64, requires_grad=True)
    result = profile(Net(), (x, 2.0), lambda y: y.sum())
    assert list(result) == ["rnn"]
    assert [(p.trace.layer, p.trace.direction) for p in result["rnn"]] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    for p in result["rnn"]:
        assert p.kind == "RNN" and p.terms is None and p.lags.bound is not None
        assert np.all(p.lags.jacobian_norm <= p.lags.bound * (1 + 1e-9))
    assert x.grad is None  # the inputs are not touched either


def test_profile_a_bare_layer_and_vanishing_layers() -> None:
    x = torch.randn(5, 2, 1, dtype=F64)
    result = profile(nn.LSTM(1, 3, dtype=F64), x, lambda out: out[0][-1].sum())
    assert list(result) == [""] and result[""][0].kind == "LSTM"
    model = nn.Sequential()
    model.add_module("rnn", vanishing.RNN(1, 3, nonlinearity="sigmoid", dtype=F64))
    result = profile(model, x, lambda out: out[0][-1].sum())
    assert result["rnn"][0].lags.bound[1] <= 0.25 * 3  # sigmoid gamma, lambda_1 < 3 at init
    assert model.rnn.traces == []  # recorded on the copy


def test_profile_errors() -> None:
    x = torch.randn(4, 1, 2)
    with pytest.raises(ValueError, match="proj_size"):
        profile(nn.LSTM(2, 4, proj_size=2), x, lambda out: out[0].sum())
    with pytest.raises(ValueError, match="no torch.nn.RNN"):
        profile(nn.GRU(2, 3), x, lambda out: out[0].sum())
    with pytest.raises(TypeError, match="single element"):
        profile(nn.LSTM(2, 3), x, lambda out: out[0])
    with pytest.raises(TypeError, match="nn.Module"):
        profile(lambda x: x, x, lambda out: out.sum())


def test_profile_details_measure_what_they_say() -> None:
    torch.manual_seed(2)
    model = LastStep(I=2, H=4)
    x = torch.randn(3, 7, 2, dtype=F64)
    norms, terms, exact = (profile(model, x, mse, detail=d)["lstm"][0] for d in gf.DETAILS)
    assert norms.terms is None and norms.lags.method == "skipped"
    assert np.isnan(norms.lags.jacobian_norm[1:]).all()
    assert terms.terms is not None and terms.lags.method == "estimate"
    assert exact.lags.method == exact.terms.method == "exact"
    np.testing.assert_array_equal(norms.lags.dc_norm, exact.lags.dc_norm)
    # H = 4 <= the sweep's columns: the estimate spans everything, exact up to rounding
    np.testing.assert_allclose(terms.lags.jacobian_norm, exact.lags.jacobian_norm, rtol=1e-10)
    np.testing.assert_allclose(terms.terms.total, exact.terms.total, rtol=1e-8)
    with pytest.raises(ValueError, match="detail must be one of norms, terms, exact"):
        profile(model, x, mse, detail="all")


def test_profile_in_float64_casts_the_copy_and_the_inputs() -> None:
    torch.manual_seed(3)
    model = nn.Sequential()
    model.add_module("lstm", nn.LSTM(2, 3))  # float32
    x = torch.randn(6, 2, 2)
    (p32,) = profile(model, x, lambda out: out[0][-1].sum())["lstm"]
    (p64,) = profile(model, x, lambda out: out[0][-1].sum(), dtype=F64)["lstm"]
    assert p64.trace.h.dtype == F64 and p32.trace.h.dtype == torch.float32
    assert model.lstm.weight_hh_l0.dtype == torch.float32  # the user's model is untouched
    np.testing.assert_allclose(p64.lags.dc_norm, p32.lags.dc_norm, rtol=1e-5)


def test_profile_leaves_the_random_number_generator_alone() -> None:
    torch.manual_seed(4)
    model = nn.LSTM(2, 3, num_layers=2, dropout=0.5)  # train mode: dropout draws numbers
    x = torch.randn(5, 2, 2)
    state = torch.random.get_rng_state()
    (first, second) = profile(model, x, lambda out: out[0][-1].sum(), detail="norms")[""]
    assert torch.equal(torch.random.get_rng_state(), state)
    assert (first.trace.layer, second.trace.layer) == (0, 1)
