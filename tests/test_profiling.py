"""vanishing.profile on models built from torch.nn layers (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import vanishing
from vanishing import gradflow as gf
from vanishing.profiling import LayerProfile, profile

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


def autograd_step_loop(model: LastStep, x: torch.Tensor):  # noqa: ANN201
    """dE/dh_t, dE/dc_t (T, B, H) by retained gradients of a step loop of torch ops."""
    lstm = model.lstm
    W_ih, W_hh, b_ih, b_hh = (p.detach().clone().requires_grad_() for p in lstm.all_weights[0])
    B, T, _ = x.shape
    h = c = torch.zeros(B, lstm.hidden_size, dtype=F64)
    hs, cs = [], []
    for t in range(T):
        i, f, g, o = (x[:, t] @ W_ih.t() + b_ih + h @ W_hh.t() + b_hh).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # (B, H)
        h = torch.sigmoid(o) * torch.tanh(c)  # (B, H)
        h.retain_grad()
        c.retain_grad()
        hs.append(h)
        cs.append(c)
    W, b = (p.detach() for p in model.head.parameters())
    mse(hs[-1] @ W.t() + b).backward()
    return torch.stack([h.grad for h in hs]), torch.stack([c.grad for c in cs])


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
    dh, dc = autograd_step_loop(model, x)  # (T, B, H) each
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
