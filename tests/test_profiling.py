"""vanishing.profile on models built from torch.nn layers (float64)."""

from __future__ import annotations

import copy
import warnings

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


# ------------------------------------------------- subclasses and parametrised weights


class Scaled(nn.LSTM):
    """A subclass with its own forward (issue 13's repro): the output doubled."""

    def forward(self, x: torch.Tensor, hx: tuple | None = None) -> tuple:
        out, state = super().forward(x, hx)
        return 2 * out, state


class Fused(nn.LSTM):
    """A subclass whose forward calls torch.nn.LSTM.forward directly, not through super()."""

    def forward(self, x: torch.Tensor, hx: tuple | None = None) -> tuple:
        return nn.LSTM.forward(self, x, hx)


class Double(nn.Module):
    """A parametrisation: the stored weight times 2."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return 2 * X


def with_layer(layer: nn.Module, like: LastStep) -> LastStep:
    """A copy of `like` holding `layer` (given like's LSTM weights) instead of its LSTM."""
    model = copy.deepcopy(like)
    layer.load_state_dict(like.lstm.state_dict())
    model.lstm = layer
    return model


def test_profile_runs_a_subclass_forward_around_our_recurrence() -> None:
    torch.manual_seed(5)
    plain = LastStep()
    model = with_layer(Scaled(3, 5, batch_first=True, dtype=F64), plain)
    x = torch.randn(4, 9, 3, dtype=F64)
    (lp,) = profile(model, x, mse, detail="exact")["lstm"]
    twin = copy.deepcopy(plain)  # the subclass's forward is 2 * torch.nn.LSTM's
    grads = reference_state_grads(twin.lstm, x, lambda out: mse(twin.head(2 * out[:, -1])))
    torch.testing.assert_close(lp.trace.dh, grads[(0, 0)]["dh"], rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(lp.trace.dc, grads[(0, 0)]["dc"], rtol=1e-12, atol=1e-15)
    # ||dL/dh_T|| is the subclass's, not the plain LSTM's (issue 13: 0.574 reported, 2.29 true)
    (base,) = profile(plain, x, mse, detail="exact")["lstm"]
    assert lp.lags.dh_norm[0] != pytest.approx(base.lags.dh_norm[0], rel=0.1)
    assert type(model.lstm) is Scaled  # the user's model keeps its class
    with pytest.raises(ValueError, match=r"layer 'lstm' \(Fused\).*super\(\)\.forward"):
        profile(with_layer(Fused(3, 5, batch_first=True, dtype=F64), plain), x, mse)
    with pytest.raises(ValueError, match="layer 'lstm' is a Scaled"):
        gf.swap_layers(model)
    with pytest.raises(ValueError, match=r"layer 'lstm' \(Scaled\).*own forward"):
        vanishing.monitor(model)


def test_profile_measures_parametrised_weights_as_the_layer_uses_them() -> None:
    torch.manual_seed(6)
    plain = LastStep()
    x = torch.randn(3, 8, 3, dtype=F64)
    doubled = with_layer(nn.LSTM(3, 5, batch_first=True, dtype=F64), plain)
    with torch.no_grad():
        doubled.lstm.weight_hh_l0.mul_(2)
    expected = profile(doubled, x, mse, detail="exact")["lstm"][0]
    layer = nn.LSTM(3, 5, batch_first=True, dtype=F64)
    layer.load_state_dict(plain.lstm.state_dict())
    torch.nn.utils.parametrize.register_parametrization(layer, "weight_hh_l0", Double())
    model = copy.deepcopy(plain)
    model.lstm = layer
    (lp,) = profile(model, x, mse, detail="exact")["lstm"]
    for field in ("dh_norm", "dc_norm", "jacobian_norm"):
        np.testing.assert_allclose(
            getattr(lp.lags, field), getattr(expected.lags, field), rtol=1e-12
        )
    np.testing.assert_allclose(lp.terms.total, expected.terms.total, rtol=1e-12)
    torch.testing.assert_close(lp.layer.weight_hh_l0, 2 * plain.lstm.weight_hh_l0, rtol=0, atol=0)
    # torch's weight norm, as a parametrisation and as the deprecated hook, after a forward
    reference = nn.LSTM(3, 5, dtype=F64)
    for norm in (torch.nn.utils.parametrizations.weight_norm, torch.nn.utils.weight_norm):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # the deprecated one says so
            wn = norm(copy.deepcopy(reference), "weight_hh_l0")
        with torch.no_grad():
            wn(x.transpose(0, 1))  # its computed weights are now in torch's _flat_weights
            reference.weight_hh_l0.copy_(wn.weight_hh_l0)
        np.testing.assert_allclose(jacobian_norms(wn, x), jacobian_norms(reference, x), rtol=1e-12)
    head_norm = copy.deepcopy(plain)
    with pytest.warns(FutureWarning):
        torch.nn.utils.weight_norm(head_norm.head)  # a Linear's: torch cannot deep-copy it
    with pytest.raises(ValueError, match="module 'head' uses torch.nn.utils.weight_norm"):
        profile(head_norm, x, mse)
    with pytest.raises(ValueError, match="layer 'lstm' is parametrised"):
        gf.swap_layers(model)


def jacobian_norms(layer: nn.Module, x: torch.Tensor) -> np.ndarray:
    """A bare layer's exact Jacobian-product norms, x (B, T, I)."""
    lp = profile(layer, x.transpose(0, 1), lambda out: out[0][-1].sum(), detail="exact")
    return lp[""][0].lags.jacobian_norm


class EncoderDecoder(nn.Module):
    """An encoder whose final state is the decoder's initial state; the loss reads the
    decoder only, so the encoder's gradient arrives through that state alone."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        make = vanishing.LSTM if kind == "vanishing" else nn.LSTM
        self.encoder, self.decoder = make(2, 4, dtype=F64), make(3, 4, dtype=F64)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        _, state = self.encoder(x)
        return self.decoder(z, state)[0][-1].sum()


@pytest.mark.parametrize("kind", ["vanishing", "torch"])
def test_profile_follows_a_gradient_that_reaches_a_layer_through_its_initial_state(
    kind: str,
) -> None:
    """The copy's first layer gets an initial state that needs grad (not its input, so its
    backward computes no dx); the decoder's state already does, and is passed on as it is."""
    torch.manual_seed(2)
    model = EncoderDecoder(kind)
    x, z = torch.randn(6, 3, 2, dtype=F64), torch.randn(5, 3, 3, dtype=F64)
    found = profile(model, (x, z), lambda loss: loss, detail="norms")
    twin = EncoderDecoder("vanishing")
    twin.load_state_dict(model.state_dict())
    with vanishing.record(twin) as recording:
        twin(x.requires_grad_(), z).backward()
    for name in ("encoder", "decoder"):
        (p,) = found[name]
        (trace,) = recording[name]
        layer = getattr(twin, name)
        expected = gf.lag_profile(layer, trace, jacobian=False)
        np.testing.assert_allclose(p.lags.dh_norm, expected.dh_norm, rtol=1e-10)
        np.testing.assert_allclose(p.lags.dc_norm, expected.dc_norm, rtol=1e-10)
        assert np.all(p.lags.dc_norm > 0), name
