"""vanishing.monitor: writes what it says, at the steps it says, and changes nothing in training."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import vanishing
from vanishing.gradflow import Monitor, lag_history, monitor, profile
from vanishing.gradflow.monitor import DIGITS


class Net(nn.Module):
    """A recurrent layer (vanishing or torch.nn) and a read-out of the last step."""

    def __init__(self, layer: nn.Module, H: int) -> None:
        super().__init__()
        self.rnn = layer
        self.head = nn.Linear(H, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (T, B, I)
        out, _ = self.rnn(x)
        return self.head(out[-1])  # (B, 1)


def make(kind: str, seed: int = 0) -> Net:
    torch.manual_seed(seed)
    layers = {
        "vanishing": lambda: vanishing.LSTM(2, 6, forget_bias=1.0),
        "vanishing-rnn": lambda: vanishing.RNN(2, 6, nonlinearity="sigmoid"),
        "torch": lambda: nn.LSTM(2, 6),
        "torch-stacked": lambda: nn.LSTM(2, 6, num_layers=2, bidirectional=True),
        "torch-dropout": lambda: nn.LSTM(2, 6, num_layers=2, dropout=0.5, bidirectional=True),
    }
    H = 12 if kind.startswith("torch-") else 6
    return Net(layers[kind](), H)


def batches(steps: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(9, 4, 2, generator=gen), torch.randn(4, 1, generator=gen))
        for _ in range(steps)
    ]


def mse(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((y_hat - y) ** 2).mean()


def train(model: Net, steps: int, mon: Monitor | None = None, probe: list | None = None) -> list:
    """A plain Adam loop driving the trainer's callbacks; returns the losses. probe: gets
    (step, model copy, batch, generator state before the forward) of every step before its
    update (what profile() can measure)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step, (x, y) in enumerate(batches(steps)):
        if mon is not None:
            mon.on_step_start(step, model)
        rng = torch.get_rng_state()  # what the step's dropout masks are drawn from
        opt.zero_grad()
        loss = mse(model(x), y)
        loss.backward()
        if probe is not None:
            probe.append((step, copy.deepcopy(model), x, y, rng))
        if mon is not None:
            returned = mon.on_step_end(step, model, loss)
            assert (returned is not None) == (step % mon.every == 0)
            if returned is not None:
                assert returned == {"gradflow": mon.history[-1]["gradflow"]}
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize(
    "kind", ["vanishing", "vanishing-rnn", "torch", "torch-stacked", "torch-dropout"]
)
def test_callbacks_write_the_norms_of_the_steps_they_say(kind: str, tmp_path: Path) -> None:
    """What each line says is profile()'s measurement of that step: the same weights, batch
    and, for torch.nn's dropout between stacked layers, the same masks (the replay draws
    them from the generator's state of the step's call)."""
    model, probe = make(kind), []
    path = tmp_path / "run" / "metrics.jsonl"
    mon = monitor(model, every=3, path=path)
    train(model, 8, mon, probe)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["step"] for e in lines] == [0, 3, 6] and lines == mon.history
    for entry in lines:
        step, copy_, x, y, rng = probe[entry["step"]]
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(rng)
            assert entry["loss"] == pytest.approx(mse(copy_(x), y).item(), rel=1e-6)
            torch.set_rng_state(rng)
            expected = profile(copy_, x, lambda out, y=y: mse(out, y), detail="norms")["rnn"]
        keys = [f"rnn.{p.trace.name}" for p in expected]
        assert list(entry["gradflow"]) == keys
        for p, key in zip(expected, keys, strict=True):
            m = entry["gradflow"][key]
            assert m["kind"] == p.kind and m["horizon"] == p.lags.horizon
            np.testing.assert_allclose(m["dh_norm"], p.lags.dh_norm, rtol=1e-5)
            if p.kind == "LSTM":
                np.testing.assert_allclose(m["dc_norm"], p.lags.dc_norm, rtol=1e-5)
            else:
                assert m["dc_norm"] is None
            assert all(len(f"{v:.{DIGITS + 2}g}".lstrip("-").replace(".", "")) <= DIGITS + 5
                       for v in m["dh_norm"])  # fmt: skip


@pytest.mark.parametrize("kind", ["vanishing", "torch-dropout"])
def test_training_is_bit_identical_with_and_without_the_monitor(kind: str) -> None:
    plain, watched = make(kind), make(kind)
    torch.manual_seed(5)  # dropout draws from the global generator
    losses = train(plain, 7)
    after_plain = torch.random.get_rng_state()
    torch.manual_seed(5)
    mon = monitor(watched, every=2)
    assert train(watched, 7, mon) == losses
    assert torch.equal(torch.random.get_rng_state(), after_plain)
    for (name, p), q in zip(plain.named_parameters(), watched.parameters(), strict=True):
        assert torch.equal(p, q), name
        assert torch.equal(p.grad, q.grad), name
    assert len(mon.history) == 4
    if kind == "vanishing":  # recording is back off, and no trace is kept
        assert watched.rnn.record is False and watched.rnn.traces == []


def test_context_manager_counts_training_forwards_only(tmp_path: Path) -> None:
    model, plain = make("vanishing"), make("vanishing")
    data = batches(7)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    opt_plain = torch.optim.Adam(plain.parameters(), lr=1e-2)
    with monitor(model, every=3, path=tmp_path / "m.jsonl") as mon:
        for x, y in data:
            for m, o in ((model, opt), (plain, opt_plain)):
                o.zero_grad()
                mse(m(x), y).backward()
                o.step()
                m.eval()
                with torch.no_grad():
                    m(x)  # an evaluation: not a step, and it must not replace the recording
                m.train()
    assert [e["step"] for e in mon.history] == [0, 3, 6]  # step 6 measured at the exit
    for p, q in zip(plain.parameters(), model.parameters(), strict=True):
        assert torch.equal(p, q)
    from_file, from_memory = lag_history(tmp_path / "m.jsonl"), lag_history(mon.history)
    assert list(from_file) == list(from_memory) == ["rnn.l0"]
    np.testing.assert_array_equal(from_file["rnn.l0"][1], from_memory["rnn.l0"][1])
    steps, norms = from_memory["rnn.l0"]
    assert steps == [0, 3, 6] and norms.shape == (3, 9)
    np.testing.assert_array_equal(norms[2], mon.history[2]["gradflow"]["rnn.l0"]["dc_norm"])


def test_lag_history_skips_other_lines_and_pads_lengths(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    entries = [
        {"step": 1, "loss": 0.5},
        {"step": 2, "gradflow": {"a": {"dh_norm": [1.0, 0.5], "dc_norm": None}}},
        {"step": 4, "gradflow": {"a": {"dh_norm": [1.0, 0.5, None], "dc_norm": None}}},
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    steps, norms = lag_history(path)["a"]
    assert steps == [2, 4]
    np.testing.assert_array_equal(norms, [[1.0, 0.5, np.nan], [1.0, 0.5, np.nan]])


class Scalars:
    """A stand-in for SummaryWriter: keeps add_scalar's calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, int]] = []
        self.closed = False

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.calls.append((tag, value, step))

    def close(self) -> None:
        self.closed = True


def test_tensorboard_gets_the_horizon_and_the_last_lag_ratio(tmp_path: Path) -> None:
    writer = Scalars()
    model = make("vanishing")
    with monitor(model, every=2, tensorboard=writer) as mon:
        train(model, 3)
    tags = {(tag, step) for tag, _, step in writer.calls}
    assert tags == {
        (f"gradflow/rnn.l0/{n}", s) for n in ("horizon", "log10_ratio_last_lag") for s in (0, 2)
    }
    first = mon.history[0]["gradflow"]["rnn.l0"]
    assert ("gradflow/rnn.l0/horizon", first["horizon"], 0) in writer.calls
    assert writer.closed
    pytest.importorskip("tensorboard")
    real = monitor(make("vanishing"), every=1, tensorboard=tmp_path / "tb")
    real.on_step_start(0)
    real.model(torch.randn(5, 2, 2)).sum().backward()
    assert real.on_step_end(0) is not None
    real.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_monitor_errors_and_warnings() -> None:
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        monitor(make("vanishing"), every=0)
    with pytest.raises(ValueError, match="no torch.nn.RNN"):
        monitor(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        monitor("model")
    mon = monitor(make("vanishing"))
    with pytest.raises(ValueError, match="another model"):
        mon.on_step_start(0, make("vanishing"))
    mon.on_step_start(0)
    mon.model(torch.randn(5, 2, 2))  # a forward without backward: nothing to measure
    with pytest.warns(UserWarning, match="no gradient reached it"):
        assert mon.on_step_end(0) is None
    assert mon.on_step_end(1) is None  # not armed


def test_a_deep_copy_of_the_model_is_not_watched(tmp_path: Path) -> None:
    model = make("vanishing")
    with monitor(model, every=1, path=tmp_path / "m.jsonl") as mon:
        for x, y in batches(2):
            mse(model(x), y).backward()
            twin = copy.deepcopy(model)  # e.g. profile() inside the loop
            mse(twin(x), y).backward()
            profile(model, x, lambda out, y=y: mse(out, y), detail="norms")
    assert [e["step"] for e in mon.history] == [0, 1]
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 2


class Double(nn.Module):
    """A parametrisation: the stored weight times 2."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return 2 * X


def test_parametrised_weights_and_a_users_output_hook_are_measured_as_used() -> None:
    """The replay uses the weights the layer computes (parametrisations applied) and the
    gradient that reaches the layer's own outputs, before a user's hook changes them."""
    model = make("torch")
    torch.nn.utils.parametrize.register_parametrization(model.rnn, "weight_hh_l0", Double())
    model.rnn.register_forward_hook(lambda m, args, out: (3 * out[0], out[1]))
    mon = monitor(model, every=1)
    ((x, y),) = batches(1)
    mon.on_step_start(0, model)
    mse(model(x), y).backward()
    entry = mon.on_step_end(0, model)["gradflow"]["rnn.l0"]
    (p,) = profile(model, x, lambda out: mse(out, y), detail="norms")["rnn"]
    np.testing.assert_allclose(entry["dc_norm"], p.lags.dc_norm, rtol=1e-5)
    torch.testing.assert_close(
        p.layer.weight_hh_l0, 2 * model.rnn.parametrizations.weight_hh_l0.original
    )


class Forms(nn.Module):
    """A torch.nn layer called with one of the input forms torch.nn accepts, and a fixed
    projection of every output as the loss's input."""

    def __init__(self, layer: nn.Module, form: str) -> None:
        super().__init__()
        self.rnn, self.form = layer, form
        self.h0 = nn.Parameter(torch.randn(layer.num_layers * 2, 4, layer.hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (T, 4, I)
        T = x.shape[0]
        if self.form == "batch_first":
            out = self.rnn(x.transpose(0, 1))[0].transpose(0, 1)
        elif self.form == "unbatched":
            out = self.rnn(x[:, 0])[0]
        elif self.form == "packed":
            packed = nn.utils.rnn.pack_padded_sequence(x, [T, 3, T - 2, 5], enforce_sorted=False)
            out = nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], total_length=T)[0]
        else:  # the initial state given (and trained)
            hx = self.h0 if isinstance(self.rnn, nn.RNN) else (self.h0, torch.tanh(self.h0))
            out = self.rnn(x, hx)[0]
        return out.sum(-1)


@pytest.mark.parametrize("form", ["batch_first", "unbatched", "packed", "initial state"])
@pytest.mark.parametrize("kind", [nn.LSTM, nn.RNN])
def test_the_replay_measures_every_input_form_as_profile_does(kind: type, form: str) -> None:
    torch.manual_seed(3)
    layer = kind(2, 5, num_layers=2, bidirectional=True, batch_first=form == "batch_first")
    model = Forms(layer, form)
    x = torch.randn(8, 4, 2, generator=torch.Generator().manual_seed(4))
    weight = torch.randn(8, 4) if form != "unbatched" else torch.randn(8)

    def loss_fn(out: torch.Tensor) -> torch.Tensor:
        return (out * weight).sum()

    mon = monitor(model, every=1)
    mon.on_step_start(0, model)
    loss_fn(model(x)).backward()
    measured = mon.on_step_end(0, model)["gradflow"]
    expected = profile(model, x, loss_fn, detail="norms")["rnn"]
    assert list(measured) == [f"rnn.{p.trace.name}" for p in expected]
    for p in expected:
        m = measured[f"rnn.{p.trace.name}"]
        np.testing.assert_allclose(m["dh_norm"], p.lags.dh_norm, rtol=1e-5)
        if p.kind == "LSTM":
            np.testing.assert_allclose(m["dc_norm"], p.lags.dc_norm, rtol=1e-5)
        assert ("count" in m) == (form == "packed")


FORMS = ["padded", "batch_first", "unbatched", "initial state", "no bias", "h_n only", "float64"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("kind", ["lstm", "tanh", "relu"])
def test_the_direct_replay_gives_the_recorded_replays_trace(
    kind: str, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-layer, one-direction call is replayed straight through the kernel: the same
    states, gates and gradients, to the bit, as the recorded replay through the twin."""
    from vanishing.gradflow import replay as module
    from vanishing.gradflow.model import vanishing_twin

    torch.manual_seed(6)
    dtype = torch.float64 if form == "float64" else torch.float32
    options = dict(batch_first=form == "batch_first", bias=form != "no bias", dtype=dtype)
    if kind == "lstm":
        layer = nn.LSTM(3, 5, **options)
    else:
        layer = nn.RNN(3, 5, nonlinearity=kind, **options)
    x = torch.randn(7, 4, 3, dtype=dtype)
    if form == "batch_first":
        x = x.transpose(0, 1).contiguous()
    if form == "unbatched":
        x = x[:, 0]
    hx = None
    if form == "initial state":
        h0 = torch.randn(1, 4, 5)
        hx = (h0, torch.randn(1, 4, 5)) if kind == "lstm" else h0
    out, final = layer(x, hx)
    replay = module.Replay(vanishing_twin(layer), (x, hx), {}, (out, final), None)
    h_n = final[0] if kind == "lstm" else final
    loss = h_n.square().sum() if form == "h_n only" else out.sin().sum() + h_n.sum()
    loss.backward()
    assert module.direct_trace(replay.twin, replay.x, replay.hx, replay.grads) is not None
    (direct,) = replay.traces()
    monkeypatch.setattr(module, "direct_trace", lambda *args: None)
    (recorded,) = replay.traces()
    for name in ("h", "h0", "c", "c0", "i", "f", "g", "o", "dh", "dc"):
        a, b = getattr(direct, name), getattr(recorded, name)
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert (direct.layer, direct.direction, direct.mode) == (0, 0, recorded.mode)
