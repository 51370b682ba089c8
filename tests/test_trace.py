"""Recorded per-step traces equal a step-by-step autograd reference loop.

States and gates are compared with the loop's tensors; dh, dc (dL/dh_t, dL/dc_t over every
path to the loss) with autograd's gradients of the loop's retained h_t, c_t.
"""

import pytest
import torch
from conftest import (
    ALL_KINDS,
    RNN_KINDS,
    kind_id,
    make_inputs,
    make_layer,
    projection_loss,
    reference_forward,
    split_states,
)
from torch import nn

import vanishing

pytestmark = pytest.mark.usefixtures("path")  # kernel and reference (conftest.path)

ATOL = {"atol": 1e-10, "rtol": 1e-9}
T, B, I, H = 5, 3, 3, 4


def loss_all(layer, out, finals):
    return projection_loss(out, *split_states(finals))


def loss_last(layer, out, finals):
    """Only the last time step's output: earlier steps get gradient through the recurrence."""
    last = out[:, -1] if layer.batch_first and out.dim() == 3 else out[-1]
    return (last * torch.linspace(-1, 2, last.numel(), dtype=last.dtype).view_as(last)).sum()


LOSSES = {"all": loss_all, "last": loss_last}


def grad_or_zero(t: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(t) if t.grad is None else t.grad


def run_both(layer, x, hx, loss):
    """Recorded forward+backward of layer, and of the reference loop; (traces, steps)."""
    layer.record = True
    out, finals = layer(x, hx)
    loss(layer, out, finals).backward()
    steps: dict = {}
    x_ref = x.detach().clone().requires_grad_()
    out_r, finals_r = reference_forward(layer, x_ref, hx, steps)
    loss(layer, out_r, finals_r).backward()
    return layer.traces, steps


CONFIGS = {
    "L2-bi-bf": dict(num_layers=2, bidirectional=True, batch_first=True),
    "L2-bi": dict(num_layers=2, bidirectional=True),
    "L1": dict(num_layers=1),
}


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("kind", ALL_KINDS, ids=kind_id)
def test_traces_equal_reference_loop(kind, config, loss):
    layer = make_layer(*kind, I, H, **CONFIGS[config])
    x, hx = make_inputs(layer, T, B)
    traces, steps = run_both(layer, x, hx, LOSSES[loss])
    D = 2 if layer.bidirectional else 1
    assert [(t.layer, t.direction) for t in traces] == [
        (li, d) for li in range(layer.num_layers) for d in range(D)
    ]
    h0s = split_states(hx)
    lstm = kind[0] == "lstm"
    for k, tr in enumerate(traces):
        rec = steps[(tr.layer, tr.direction)]
        assert tr.name == f"l{tr.layer}" + ("_reverse" if tr.direction else "")
        assert tr.h.shape == (T, B, H)  # time-major, in time order, also for batch_first
        torch.testing.assert_close(tr.h, torch.stack(rec["h"]).detach(), **ATOL)
        torch.testing.assert_close(tr.h0, h0s[0][k], **ATOL)
        assert tr.dh is not None
        torch.testing.assert_close(tr.dh, torch.stack([grad_or_zero(h) for h in rec["h"]]), **ATOL)
        assert tr.dh.abs().sum() > 0
        if lstm:
            torch.testing.assert_close(tr.c, torch.stack(rec["c"]).detach(), **ATOL)
            torch.testing.assert_close(tr.c0, h0s[1][k], **ATOL)
            for gate in "ifgo":
                torch.testing.assert_close(
                    getattr(tr, gate), torch.stack(rec[gate]).detach(), **ATOL, msg=gate
                )
            dc_ref = torch.stack([grad_or_zero(c) for c in rec["c"]])
            torch.testing.assert_close(tr.dc, dc_ref, **ATOL)
        else:
            assert tr.c is tr.c0 is tr.i is tr.f is tr.g is tr.o is tr.dc is None


@pytest.mark.parametrize("kind", [("rnn", "tanh"), ("lstm", None)], ids=kind_id)
def test_last_output_loss_reverse_direction_gradient_is_local(kind):
    """With only out[T-1] in the loss, the top layer's reverse direction sees it at t = T-1
    only (it has not yet been influenced by other steps), so its dh is zero before T-1."""
    layer = make_layer(*kind, I, H, bidirectional=True)
    x, hx = make_inputs(layer, T, B)
    traces, _ = run_both(layer, x, hx, loss_last)
    reverse = traces[1]
    assert reverse.direction == 1
    assert torch.count_nonzero(reverse.dh[:-1]) == 0
    assert torch.count_nonzero(reverse.dh[-1]) > 0
    assert torch.count_nonzero(traces[0].dh[0]) > 0  # the forward direction's h_1 still counts


@pytest.mark.parametrize("kind", ALL_KINDS, ids=kind_id)
def test_unbatched_and_no_initial_state(kind):
    layer = make_layer(*kind, I, H, num_layers=2, bidirectional=True)
    x, _ = make_inputs(layer, T, None)
    traces, steps = run_both(layer, x, None, loss_all)
    for tr in traces:
        rec = steps[(tr.layer, tr.direction)]
        assert tr.h.shape == (T, 1, H)
        assert torch.count_nonzero(tr.h0) == 0
        torch.testing.assert_close(tr.h, torch.stack(rec["h"]).detach(), **ATOL)
        torch.testing.assert_close(tr.dh, torch.stack([grad_or_zero(h) for h in rec["h"]]), **ATOL)
        if kind[0] == "lstm":
            torch.testing.assert_close(tr.dc, torch.stack([grad_or_zero(c) for c in rec["c"]]))


@pytest.mark.parametrize("kind", ALL_KINDS, ids=kind_id)
def test_top_layer_trace_h_is_the_output(kind):
    layer = make_layer(*kind, I, H, num_layers=2, bidirectional=True, batch_first=True)
    layer.record = True
    x, hx = make_inputs(layer, T, B)
    out, _ = layer(x, hx)
    fwd, rev = layer.traces[2], layer.traces[3]
    assert torch.equal(torch.cat([fwd.h, rev.h], 2), out.detach().transpose(0, 1))
    assert fwd.dh is None and rev.dh is None  # until backward has run


class TakeOutput(nn.Module):
    def forward(self, result):
        return result[0]


def make_sequential():
    f64 = torch.float64
    return nn.Sequential(
        nn.Linear(3, 4, dtype=f64),
        vanishing.LSTM(4, 5, num_layers=2, batch_first=True, dtype=f64),
        TakeOutput(),
        nn.Linear(5, 1, dtype=f64),
    )


def test_record_context_manager_on_sequential():
    model = make_sequential()
    lstm = model[1]
    captured = {}
    lstm.register_forward_hook(lambda m, args, result: captured.update(out=result[0]))
    x = torch.randn(B, T, 3, dtype=torch.float64)
    assert lstm.record is False
    with vanishing.record(model) as rec:
        y = model(x)
        assert lstm.traces is rec["1"]  # inside the block, the layer shows the recording's
        captured["out"].retain_grad()
        y[:, -1].sum().backward()
    assert lstm.record is False
    assert lstm.traces == [] and lstm._traces == []  # the recording keeps them, not the layer
    assert list(rec) == ["1"]
    assert [name for name, _ in rec.items()] == ["1"]
    traces = rec["1"]
    assert [t.name for t in traces] == ["l0", "l1"]
    for tr in traces:
        assert tr.h.shape == tr.c.shape == tr.dh.shape == tr.dc.shape == (T, B, 5)
    # top layer, last step: dL/dh_T is the gradient reaching the last output (h_n is unused)
    out_grad = captured["out"].grad  # (B, T, H)
    torch.testing.assert_close(traces[1].dh[-1], out_grad[:, -1], **ATOL)
    assert torch.count_nonzero(out_grad[:, :-1]) == 0
    assert torch.count_nonzero(traces[1].dh[0]) > 0  # earlier steps: through the recurrence


def test_record_finds_nested_layers_and_restores_prior_setting():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.ModuleDict({"rnn": vanishing.RNN(3, 4, dtype=torch.float64)})
            self.lstm = vanishing.LSTM(4, 2, dtype=torch.float64, record=True)

        def forward(self, x):
            return self.lstm(self.encoder["rnn"](x)[0])[0]

    model = Model()
    x = torch.randn(T, B, 3, dtype=torch.float64)
    with vanishing.record(model) as rec:
        model(x).sum().backward()
    assert sorted(rec) == ["encoder.rnn", "lstm"]
    assert rec["encoder.rnn"][0].dh.shape == (T, B, 4)
    assert rec["lstm"][0].dc.shape == (T, B, 2)
    assert model.encoder["rnn"].record is False
    assert model.lstm.record is True  # was on before: stays on


def test_record_on_a_bare_layer_and_restores_on_error():
    layer = vanishing.RNN(3, 4)
    with pytest.raises(RuntimeError, match="boom"), vanishing.record(layer) as rec:
        layer(torch.randn(T, B, 3))
        assert list(rec) == [""]
        assert len(rec[""]) == 1
        raise RuntimeError("boom")
    assert layer.record is False


def test_record_without_vanishing_layers_raises():
    model = nn.Sequential(nn.Linear(3, 4), nn.LSTM(4, 4))
    with pytest.raises(ValueError, match=r"vanishing\.RNN or vanishing\.LSTM"):
        with vanishing.record(model):
            pass  # pragma: no cover


@pytest.mark.parametrize("kind", [("rnn", "tanh"), ("lstm", None)], ids=kind_id)
def test_traces_replaced_on_each_forward(kind):
    layer = make_layer(*kind, I, H, num_layers=2, bidirectional=True, record=True)
    first_x, _ = make_inputs(layer, 4, B)
    second_x, _ = make_inputs(layer, 6, B)
    layer(first_x)
    first = layer.traces
    assert len(first) == 4
    out, _ = layer(second_x)
    second = layer.traces
    assert second is not first
    assert len(second) == 4
    assert all(t.h.shape[0] == 6 for t in second)
    assert all(t.h.shape[0] == 4 for t in first)
    out.sum().backward()
    assert all(t.dh is not None for t in second)
    assert all(t.dh is None for t in first)  # backward went through the second call only


@pytest.mark.parametrize("kind", RNN_KINDS + [("lstm", None)], ids=kind_id)
def test_no_traces_when_record_is_off(kind):
    layer = make_layer(*kind, I, H, num_layers=2, bidirectional=True)
    assert layer.record is False
    x, hx = make_inputs(layer, T, B)
    out, _ = layer(x, hx)
    out.sum().backward()
    assert layer.traces == []


def test_select_keeps_the_chosen_sequences_of_every_field():
    layer = make_layer("lstm", None, I, H, record=True)
    x, hx = make_inputs(layer, T, B)
    out, _ = layer(x, hx)
    out.sum().backward()
    full = layer.traces[0]
    part = full.select(slice(1, 3))
    for field in ("h", "c", "i", "f", "g", "o", "dh", "dc"):
        torch.testing.assert_close(getattr(part, field), getattr(full, field)[:, 1:3])
    torch.testing.assert_close(part.h0, full.h0[1:3])
    torch.testing.assert_close(part.c0, full.c0[1:3])
    assert (part.layer, part.direction, part.mode) == (full.layer, full.direction, "LSTM")


def test_trace_mode_is_the_layers():
    for kind in ALL_KINDS:
        layer = make_layer(*kind, I, H, record=True)
        layer(make_inputs(layer, T, B)[0])
        assert layer.traces[0].mode == layer.mode
