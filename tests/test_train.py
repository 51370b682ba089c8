"""The training loop: config checks, the regressor, same data for all, hooks, clipping."""

import pytest
import torch

from vanishing import LSTM, RNN
from vanishing.train import SequenceRegressor, TrainConfig, train


def test_config_rejects_unknown_keys_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown TrainConfig keys \['stpes'\].*'steps'"):
        TrainConfig.from_dict({"stpes": 10})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("steps", -1, "steps must be >= 0"),
        ("batch", 0, "batch must be >= 1"),
        ("T", 1, "T must be >= 2"),
        ("lr", 0.0, "lr must be a finite number > 0"),
        ("clip", float("nan"), "clip must be a finite number > 0"),
        ("steps", 2.5, "steps must be an int"),
        ("lr", "fast", "lr must be a number"),
    ],
)
def test_config_bad_values_say_what_was_expected(key: str, value: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        TrainConfig.from_dict({key: value})


def test_regressor_reads_the_last_step() -> None:
    torch.manual_seed(0)
    model = SequenceRegressor(RNN(2, 5))
    x = torch.randn(7, 3, 2)
    out = model(x)
    assert out.shape == (3, 1)
    x2 = x.clone()
    x2[-1] += 1.0  # changing the last step changes the output
    assert not torch.allclose(model(x2), out)


def make(kind: str) -> SequenceRegressor:
    torch.manual_seed(0)
    return SequenceRegressor(LSTM(2, 8) if kind == "lstm" else RNN(2, 8))


def test_train_records_curves_and_calls_the_hook() -> None:
    config = TrainConfig(steps=6, batch=4, T=5, eval_every=3, test_size=16, hook_every=2)
    calls = []
    histories = train(
        {"a": make("rnn"), "b": make("lstm")},
        config,
        hook=lambda step, name, model: calls.append((step, name)),
        progress=False,
    )
    for h in histories.values():
        assert len(h.train_loss) == 6
        assert h.test_steps == [0, 3, 6]
        assert all(v > 0 for v in h.test_mse)
    assert calls == [(s, n) for s in (0, 2, 4, 6) for n in ("a", "b")]


def test_same_seed_same_data_same_result() -> None:
    config = TrainConfig(steps=3, batch=4, T=5, eval_every=1, test_size=8)
    first = train({"m": make("rnn")}, config, progress=False)["m"]
    again = train({"m": make("rnn")}, config, progress=False)["m"]
    assert first.train_loss == again.train_loss


def test_learning_reduces_the_loss() -> None:
    config = TrainConfig(steps=60, batch=16, T=4, lr=1e-2, eval_every=60, test_size=64)
    h = train({"m": make("lstm")}, config, progress=False)["m"]
    assert h.test_mse[-1] < 0.5 * h.test_mse[0]


def test_clipping_bounds_the_gradient_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    from vanishing.gradflow import clip_grad_norm_
    from vanishing.train import loop

    seen = []

    def spy(parameters, threshold):  # noqa: ANN001, ANN202
        params = list(parameters)
        norm = clip_grad_norm_(params, threshold)
        after = torch.sqrt(sum((p.grad**2).sum() for p in params)).item()
        seen.append((norm, after))
        return norm

    monkeypatch.setattr(loop, "clip_grad_norm_", spy)
    config = TrainConfig(steps=3, batch=4, T=5, eval_every=3, test_size=8, clip=1e-3)
    train({"m": make("rnn")}, config, progress=False)
    assert len(seen) == 3
    assert all(after <= 1e-3 * (1 + 1e-5) for _, after in seen)


@pytest.mark.parametrize("before", [False, True])
def test_flush_denormal_restores_the_setting_it_found(before: bool) -> None:
    from vanishing.train import flush_denormal
    from vanishing.train.runtime import flush_denormal_enabled

    torch.set_flush_denormal(before)
    try:
        assert flush_denormal_enabled() is before
        with flush_denormal():
            assert flush_denormal_enabled()
            assert torch.tensor(1e-320, dtype=torch.float64).mul(1.0).item() == 0.0
        assert flush_denormal_enabled() is before
    finally:
        torch.set_flush_denormal(False)


def test_run_folders_are_new_each_time(tmp_path) -> None:  # noqa: ANN001
    from vanishing.train import make_run_dir

    first, second = make_run_dir(tmp_path / "a", "demo"), make_run_dir(tmp_path / "a", "demo")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.startswith("demo-") and second.name.startswith(first.name)
