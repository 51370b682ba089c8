"""vanishing.RNN / vanishing.LSTM equal torch.nn.RNN / torch.nn.LSTM with the same weights.

On both implementations: the compiled kernel and the reference (the `path` fixture).
"""

import itertools

import pytest
import torch
from conftest import (
    RNN_KINDS,
    TORCH_KINDS,
    assert_results_close,
    forward_backward,
    kind_id,
    make_inputs,
    make_layer,
    make_torch_twin,
    reference_forward,
    tol,
)
from torch import nn

import vanishing

# Every test here runs on both the compiled kernel and the reference BPTT (conftest.path).
pytestmark = pytest.mark.usefixtures("path")

CONFIGS = [
    dict(num_layers=n, bidirectional=bi, batch_first=bf, bias=bias)
    for n, bi, bf, bias in itertools.product((1, 2), (False, True), (False, True), (True, False))
]


def config_id(c: dict) -> str:
    return (
        f"L{c['num_layers']}{'-bi' if c['bidirectional'] else ''}"
        f"{'-bf' if c['batch_first'] else ''}{'' if c['bias'] else '-nobias'}"
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("with_states", [True, False], ids=["hx", "nohx"])
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
@pytest.mark.parametrize("kind", TORCH_KINDS, ids=kind_id)
def test_batched_matches_torch(kind, config, with_states, dtype):
    ours = make_layer(*kind, 3, 4, dtype=dtype, **config)
    theirs = make_torch_twin(ours)
    x, hx = make_inputs(ours, T=5, B=3, with_states=with_states)
    a = forward_backward(ours, x, hx)
    b = forward_backward(theirs, x, hx)
    assert a["out"].shape == b["out"].shape
    assert_results_close(a, b, **tol(dtype))


@pytest.mark.parametrize("with_states", [True, False], ids=["hx", "nohx"])
@pytest.mark.parametrize(
    "config",
    [
        dict(num_layers=1, bidirectional=False, batch_first=False),
        dict(num_layers=2, bidirectional=True, batch_first=False),
        dict(num_layers=2, bidirectional=True, batch_first=True),
    ],
    ids=["L1", "L2-bi", "L2-bi-bf"],
)
@pytest.mark.parametrize("kind", TORCH_KINDS, ids=kind_id)
def test_unbatched_matches_torch(kind, config, with_states):
    ours = make_layer(*kind, 3, 4, **config)
    theirs = make_torch_twin(ours)
    x, hx = make_inputs(ours, T=5, B=None, with_states=with_states)
    a = forward_backward(ours, x, hx)
    b = forward_backward(theirs, x, hx)
    assert a["out"].shape == (5, 4 * (2 if config["bidirectional"] else 1))
    assert a["h_n"].dim() == 2
    assert_results_close(a, b, **tol(torch.float64))


@pytest.mark.parametrize("with_states", [True, False], ids=["hx", "nohx"])
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_sigmoid_rnn_matches_autograd_reference(config, with_states):
    ours = make_layer("rnn", "sigmoid", 3, 4, **config)
    x, hx = make_inputs(ours, T=5, B=3, with_states=with_states)
    a = forward_backward(ours, x, hx)
    b = forward_backward(ours, x, hx, call=lambda x, hx: reference_forward(ours, x, hx))
    assert_results_close(a, b, **tol(torch.float64))


def test_sigmoid_rnn_unbatched_matches_autograd_reference():
    ours = make_layer("rnn", "sigmoid", 3, 4, num_layers=2, bidirectional=True)
    x, hx = make_inputs(ours, T=5, B=None)
    a = forward_backward(ours, x, hx)
    b = forward_backward(ours, x, hx, call=lambda x, hx: reference_forward(ours, x, hx))
    assert_results_close(a, b, **tol(torch.float64))


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=kind_id)
def test_load_state_dict_from_torch(kind):
    """Weights flow torch -> ours as well as ours -> torch (make_torch_twin)."""
    theirs_cls = nn.LSTM if kind[0] == "lstm" else nn.RNN
    extra = {} if kind[0] == "lstm" else {"nonlinearity": kind[1]}
    theirs = theirs_cls(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64, **extra)
    ours = make_layer(*kind, 3, 4, num_layers=2, bidirectional=True)
    ours.load_state_dict(theirs.state_dict())
    for name, p in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[name], p), name
    x, hx = make_inputs(ours, T=4, B=2)
    assert_results_close(
        forward_backward(ours, x, hx), forward_backward(theirs, x, hx), **tol(torch.float64)
    )


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=kind_id)
def test_gradients_accumulate_like_torch(kind):
    """Two backward passes add up, parameter by parameter (b_ih and b_hh get separate grads)."""
    ours = make_layer(*kind, 3, 4, num_layers=2, bidirectional=True)
    theirs = make_torch_twin(ours)
    x, hx = make_inputs(ours, T=4, B=2)
    for m in (ours, theirs):
        for seed in (1, 2):
            out, states = m(x, hx)
            h_n = states[0] if kind[0] == "lstm" else states
            (out.sum() * seed + h_n.pow(2).sum()).backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, **tol(torch.float64), msg=name)
    assert ours.bias_ih_l0.grad.data_ptr() != ours.bias_hh_l0.grad.data_ptr()


@pytest.mark.parametrize(
    "config",
    [dict(), dict(num_layers=2, bidirectional=True), dict(num_layers=3, bias=False)],
    ids=["L1", "L2-bi", "L3-nobias"],
)
@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_same_seed_same_parameters_as_torch(kind, config):
    ours_cls, theirs_cls = (vanishing.LSTM, nn.LSTM) if kind == "lstm" else (vanishing.RNN, nn.RNN)
    torch.manual_seed(7)
    ours = ours_cls(3, 5, **config)
    after_ours = torch.rand(3)
    torch.manual_seed(7)
    theirs = theirs_cls(3, 5, **config)
    after_theirs = torch.rand(3)
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for name in b:
        assert a[name].shape == b[name].shape, name
        assert a[name].dtype == b[name].dtype, name
        assert torch.equal(a[name], b[name]), name
    assert torch.equal(after_ours, after_theirs)  # same number of random draws


def test_parameter_shapes_match_torch_names():
    ours = vanishing.LSTM(3, 5, num_layers=2, bidirectional=True)
    theirs = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    assert {n: p.shape for n, p in ours.named_parameters()} == {
        n: p.shape for n, p in theirs.named_parameters()
    }
    assert ours.weight_ih_l1_reverse.shape == (20, 10)
    assert [[w.shape for w in ws] for ws in ours.all_weights] == [
        [w.shape for w in ws] for ws in theirs.all_weights
    ]


@pytest.mark.parametrize("forget_bias", [1.0, 2.5])
def test_forget_bias_adds_to_forget_block_of_bias_ih_only(forget_bias):
    H = 4
    config = dict(num_layers=2, bidirectional=True)
    torch.manual_seed(3)
    plain = vanishing.LSTM(3, H, **config)
    torch.manual_seed(3)
    shifted = vanishing.LSTM(3, H, forget_bias=forget_bias, **config)
    torch.manual_seed(3)
    theirs = nn.LSTM(3, H, **config)
    a, b, t = plain.state_dict(), shifted.state_dict(), theirs.state_dict()
    assert torch.equal(a["bias_ih_l0"], t["bias_ih_l0"])
    n_bias_ih = 0
    for name in a:
        if name.startswith("bias_ih"):
            n_bias_ih += 1
            assert torch.equal(b[name][H : 2 * H], a[name][H : 2 * H] + forget_bias), name
            assert torch.equal(b[name][:H], a[name][:H]), name
            assert torch.equal(b[name][2 * H :], a[name][2 * H :]), name
        else:
            assert torch.equal(b[name], a[name]), name
    assert n_bias_ih == 4


def test_forget_bias_default_is_zero():
    torch.manual_seed(3)
    a = vanishing.LSTM(2, 3)
    torch.manual_seed(3)
    b = nn.LSTM(2, 3)
    assert a.forget_bias == 0.0
    assert torch.equal(a.bias_ih_l0, b.bias_ih_l0)


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=kind_id)
def test_dropout_eval_mode_matches_torch(kind):
    ours = make_layer(*kind, 3, 4, num_layers=3, bidirectional=True, dropout=0.5).eval()
    theirs = make_torch_twin(ours)
    assert not theirs.training
    x, hx = make_inputs(ours, T=5, B=2)
    assert_results_close(
        forward_backward(ours, x, hx), forward_backward(theirs, x, hx), **tol(torch.float64)
    )


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=kind_id)
def test_dropout_train_mode_shapes_and_gradient_flow(kind):
    ours = make_layer(*kind, 3, 4, num_layers=2, bidirectional=True, dropout=0.5).train()
    x, hx = make_inputs(ours, T=5, B=3)
    r = forward_backward(ours, x, hx)
    assert r["out"].shape == (5, 3, 8)
    assert r["h_n"].shape == (4, 3, 4)
    for key, g in r.items():
        assert g is not None, key
        assert torch.isfinite(g).all(), key
        if key.startswith("grad_"):
            assert g.abs().sum() > 0, key
    # dropout is active in train mode (outputs differ from eval), and off in eval mode.
    out_train = ours(x, hx)[0]
    out_eval = ours.eval()(x, hx)[0]
    assert not torch.allclose(out_train, out_eval)
    assert torch.equal(out_eval, ours(x, hx)[0])


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=kind_id)
def test_dropout_train_mode_draws_torchs_masks(kind):
    """Same RNG state -> same dropout masks as torch (torch 2.x CPU: one dropout per layer)."""
    ours = make_layer(*kind, 3, 4, num_layers=3, dropout=0.3).train()
    theirs = make_torch_twin(ours)
    x, hx = make_inputs(ours, T=5, B=2)
    a = forward_backward(ours, x, hx, call=lambda *a: (torch.manual_seed(11), ours(*a))[1])
    b = forward_backward(theirs, x, hx, call=lambda *a: (torch.manual_seed(11), theirs(*a))[1])
    assert_results_close(a, b, **tol(torch.float64))


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        vanishing.LSTM(3, 4, dropout=0.2)


@pytest.mark.parametrize("kind", RNN_KINDS, ids=kind_id)
def test_rnn_mode(kind):
    layer = make_layer(*kind, 3, 4, num_layers=2)
    assert layer.mode == {"tanh": "RNN_TANH", "relu": "RNN_RELU", "sigmoid": "RNN_SIGMOID"}[kind[1]]
    if kind[1] != "sigmoid":
        assert layer.mode == make_torch_twin(layer).mode


def add_in_place(module):
    """call(x, hx): the module, then `output += 1` in place (e.g. a residual connection)."""

    def call(x, hx):
        out, states = module(x, hx)
        out += 1.0
        return out, states

    return call


@pytest.mark.parametrize(
    "config,B",
    [
        pytest.param(dict(bidirectional=True), 2, id="L1-bi"),
        pytest.param(dict(num_layers=2, bidirectional=True, batch_first=True), 2, id="L2-bi-bf"),
        pytest.param(dict(), 2, id="L1"),
        pytest.param(dict(num_layers=2), 2, id="L2"),
        pytest.param(dict(batch_first=True), 2, id="L1-bf"),
        pytest.param(dict(), None, id="L1-unbatched"),
    ],
)
@pytest.mark.parametrize("kind", [("rnn", "tanh"), ("lstm", None)], ids=kind_id)
def test_in_place_op_on_output_like_torch(kind, config, B):
    ours = make_layer(*kind, 3, 4, **config)
    theirs = make_torch_twin(ours)
    x, hx = make_inputs(ours, T=4, B=B)
    assert_results_close(
        forward_backward(ours, x, hx, call=add_in_place(ours)),
        forward_backward(theirs, x, hx, call=add_in_place(theirs)),
        **tol(torch.float64),
    )
