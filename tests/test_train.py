"""The trainer: configs, models, initialisations, optimizers, callbacks, clipping, data sources,
success and budget, NaN detection, checkpoints, resume (in-process and after a real SIGKILL)."""

from __future__ import annotations

import math
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from vanishing import LSTM, RNN
from vanishing.tasks import Batch, Objective, make_task
from vanishing.train import (
    CheckpointError,
    EarlyStopping,
    ModelConfig,
    RunConfig,
    SequenceModel,
    TaskStream,
    TensorData,
    TrainConfig,
    build_model,
    chrono_,
    fit,
    forget_bias_,
    make_optimizer,
    read_jsonl,
    run,
)
from vanishing.train.checkpoint import load_latest, steps_on_disk


def test_config_rejects_unknown_keys_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown TrainConfig keys \['stpes'\].*'budget'"):
        TrainConfig.from_dict({"stpes": 10})
    with pytest.raises(ValueError, match=r"unknown ModelConfig keys \['size'\].*'hidden'"):
        ModelConfig.from_dict({"size": 10})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lr": -1.0}, "lr must be a finite number > 0"),
        ({"lr": float("nan")}, "lr must be a finite number > 0"),
        ({"clip": 0.0}, "clip must be a finite number > 0"),
        ({"budget": -1}, "budget must be >= 0"),
        ({"batch": 0}, "batch must be >= 1"),
        ({"gradflow_every": -1}, "gradflow_every must be >= 0"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of sgd, momentum, adam"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
        ({"batch": 2.5}, "batch must be an int"),
        ({"lr": "fast"}, "lr must be a number"),
    ],
)
def test_train_config_bad_values_say_what_was_expected(values: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        TrainConfig(**values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"model": "gru"}, "model must be one of lstm, rnn"),
        ({"model": "lstm", "nonlinearity": "relu"}, "nonlinearity applies to the rnn only"),
        ({"model": "lstm", "chrono": True, "forget_bias": 1.0}, "give forget_bias or chrono"),
        ({"model": "rnn", "forget_bias": 1.0}, "apply to the lstm only"),
        ({"model": "rnn", "nonlinearity": "softsign"}, "nonlinearity must be one of tanh"),
        ({"model": "rnn", "nonlinearity": "sigmoid", "impl": "torch"}, "no sigmoid"),
        ({"hidden": 0}, "hidden must be >= 1"),
    ],
)
def test_model_config_bad_values(values: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        ModelConfig(**values)


def test_model_config_resolves_defaults() -> None:
    assert ModelConfig("lstm").chrono and ModelConfig("lstm").forget_bias is None
    assert ModelConfig("lstm", forget_bias=1).chrono is False
    assert ModelConfig("lstm", chrono=False).forget_bias == 0.0
    assert ModelConfig("lstm", forget_bias=1).label == "LSTM (forget bias 1)"
    assert ModelConfig("rnn").nonlinearity == "tanh"
    assert RunConfig("copying").T == 100 and RunConfig("reber").T is None
    with pytest.raises(ValueError, match="adding: T must be an int >= 20"):
        RunConfig("adding", 5)


@pytest.mark.parametrize("make", [lambda: LSTM(3, 6), lambda: nn.LSTM(3, 6), lambda: RNN(3, 6)])
def test_padded_batch_reads_each_sequence_at_its_own_end(make) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    model = SequenceModel(make(), 2)
    lengths = torch.tensor([5, 2, 4])
    x = torch.randn(5, 3, 3) * (torch.arange(5).unsqueeze(1) < lengths).unsqueeze(2)
    x[3:, 1] = 7.0  # garbage after the second sequence's end changes nothing
    out = model(x, lengths)  # (3, 2)
    for b in range(3):
        alone = model(x[: lengths[b], b : b + 1])  # (1, 2), no padding at all
        torch.testing.assert_close(out[b : b + 1], alone)


def test_per_step_model_outputs_every_step() -> None:
    model = SequenceModel(LSTM(2, 4), 5, per_step=True)
    assert model(torch.zeros(7, 3, 2), torch.tensor([7, 3, 1])).shape == (7, 3, 5)


def test_forget_bias_matches_the_layers_own_option_on_both_implementations() -> None:
    torch.manual_seed(1)
    ours = LSTM(3, 5, num_layers=2, forget_bias=1.5)
    torch.manual_seed(1)
    plain = LSTM(3, 5, num_layers=2)
    torch.manual_seed(1)
    theirs = nn.LSTM(3, 5, num_layers=2)
    forget_bias_(plain, 1.5)
    forget_bias_(theirs, 1.5)
    for name, p in ours.named_parameters():
        assert torch.equal(p, getattr(plain, name)) and torch.equal(p, getattr(theirs, name))


@pytest.mark.parametrize("layer", [LSTM(2, 64, num_layers=2), nn.LSTM(2, 64, num_layers=2)])
def test_chrono_sets_forget_and_input_biases(layer: nn.Module) -> None:
    T_max = 200
    chrono_(layer, T_max, torch.Generator().manual_seed(0))
    for k in range(2):
        b_ih, b_hh = getattr(layer, f"bias_ih_l{k}"), getattr(layer, f"bias_hh_l{k}")
        b_f = (b_ih + b_hh)[64:128]
        b_i = (b_ih + b_hh)[:64]
        assert (b_f >= 0).all() and (b_f <= math.log(T_max - 1) + 1e-6).all()
        assert b_f.max() > math.log(T_max / 4), "spread up to log(T_max - 1)"
        torch.testing.assert_close(b_i, -b_f)
        assert (b_hh[:128] == 0).all()
    with pytest.raises(ValueError, match="T_max an int >= 3"):
        chrono_(layer, 2)


def test_build_model_chrono_uses_the_tasks_longest_lag() -> None:
    model = build_model(ModelConfig("lstm", hidden=200, chrono=True), 2, 1, T_max=110, seed=0)
    b_f = (model.recurrent.bias_ih_l0 + model.recurrent.bias_hh_l0)[200:400]
    assert b_f.max() <= math.log(109) + 1e-6 and b_f.max() > math.log(80)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_optimizers(name: str) -> None:
    w = nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = make_optimizer(name, [w], lr=0.1, momentum=0.5)
    w.grad = torch.tensor([0.5, 1.0])
    optimizer.step()
    if name in ("sgd", "momentum"):  # the first momentum step is plain SGD
        torch.testing.assert_close(w.detach(), torch.tensor([0.95, -2.1]))
    else:
        torch.testing.assert_close(w.detach(), torch.tensor([0.9, -2.1]))


def small(task: str = "adding", T: int | None = 20, model: str = "lstm", **train) -> RunConfig:
    values = dict(batch=8, budget=400, eval_every=5, test_size=32, lr=3e-3)
    values.update(train)
    kind = ModelConfig(model, hidden=8, chrono=True) if model == "lstm" else ModelConfig(model)
    return RunConfig(task, T, kind, TrainConfig(**values))


def parts(config: RunConfig):  # noqa: ANN201
    task = config.make_task()
    model = build_model(
        config.model,
        task.input_size,
        task.objective.outputs,
        task.objective.per_step,
        task.max_length,
        config.train.seed,
    )
    held_out = task.sample(config.train.test_size, torch.Generator().manual_seed(99))
    return task, model, TaskStream(task, config.train.batch, config.train.seed), held_out


def test_lstm_solves_the_1997_adding_problem_at_t20(tmp_path: Path) -> None:
    config = small(T=20, batch=16, budget=40_000, eval_every=50, test_size=500, lr=1e-2)
    config.model = ModelConfig("lstm", hidden=16, chrono=True)
    result = run(config, tmp_path / "run", progress=False)
    assert result.status == "solved", result.final
    assert result.final.correct == 1.0 and result.sequences_to_success == result.sequences
    assert result.sequences <= 40_000


def test_budget_is_a_reported_failure_and_evaluations_are_logged(tmp_path: Path) -> None:
    result = run(small(model="rnn", budget=80), tmp_path / "run", progress=False)
    assert result.status == "budget" and result.sequences_to_success is None
    assert result.sequences == 80 and result.steps == 10
    assert [e.step for e in result.evaluations] == [0, 5, 10]
    logged = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if r["event"] == "eval"]
    assert [r["step"] for r in logged] == [0, 5, 10]
    assert all(0 <= r["correct"] <= 1 for r in logged)


class Recorder:
    """Checks the callback protocol: when each method is called and what it sees."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def on_step_start(self, step: int, model: nn.Module) -> None:
        self.calls.append(("start", step))

    def on_step_end(self, step: int, model: nn.Module, loss: torch.Tensor) -> dict:
        has_grad = all(p.grad is not None for p in model.parameters())
        self.calls.append(("end", step, has_grad))
        return {"grad_norm": float(torch.linalg.vector_norm(model.readout.weight.grad))}


def test_callbacks_are_called_around_each_step_and_their_dicts_logged(tmp_path: Path) -> None:
    recorder = Recorder()
    config = small(budget=24)
    _, model, data, held_out = parts(config)
    fit(
        model,
        make_task("adding", 20).objective,
        data,
        config.train,
        held_out,
        [recorder, object()],
        run_dir=tmp_path,
        progress=False,
    )
    assert recorder.calls == [call for s in (1, 2, 3) for call in (("start", s), ("end", s, True))]
    logged = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "grad_norm" in r]
    assert [r["step"] for r in logged] == [1, 2, 3] and all(r["grad_norm"] > 0 for r in logged)


def test_clipping_bounds_the_gradient_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    from vanishing.gradflow import clip_grad_norm_
    from vanishing.train import loop

    seen = []

    def spy(parameters, threshold):  # noqa: ANN001, ANN202
        params = list(parameters)
        norm = clip_grad_norm_(params, threshold)
        seen.append(torch.sqrt(sum((p.grad**2).sum() for p in params)).item())
        return norm

    monkeypatch.setattr(loop, "clip_grad_norm_", spy)
    config = small(budget=24, clip=1e-3)
    task, model, data, held_out = parts(config)
    fit(model, task.objective, data, config.train, held_out, progress=False)
    assert len(seen) == 3 and all(after <= 1e-3 * (1 + 1e-5) for after in seen)


class Poison:
    """Puts NaN into a weight before step `at` (the loss) or into a gradient after it."""

    def __init__(self, at: int, where: str) -> None:
        self.at, self.where = at, where

    def on_step_start(self, step: int, model: nn.Module) -> None:
        if step == self.at and self.where == "weight":
            with torch.no_grad():
                model.readout.bias.fill_(float("nan"))

    def on_step_end(self, step: int, model: nn.Module, loss: torch.Tensor) -> None:
        if step == self.at and self.where == "grad":
            model.recurrent.weight_hh_l0.grad[0, 0] = float("inf")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("weight", "step 4: the loss is nan"),
        ("grad", "step 4: the gradient of recurrent.weight_hh_l0 holds Inf"),
    ],
)
def test_non_finite_loss_or_gradient_stops_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, where: str, message: str
) -> None:
    config = small(budget=400, eval_every=2)
    task, model, data, held_out = parts(config)
    result = fit(
        model,
        task.objective,
        data,
        config.train,
        held_out,
        [Poison(4, where)],
        run_dir=tmp_path,
        progress=False,
    )
    assert result.status == "diverged" and result.message == message
    assert result.steps == 4
    assert steps_on_disk(tmp_path / "checkpoints") == [2, 0]
    good = load_latest(tmp_path / "checkpoints", print)
    assert good.step == 2
    assert all(torch.isfinite(t).all() for k, t in good.tensors.items() if k.startswith("model."))


class Crash:
    """Raises at the start of step `at`, as a process killed there would stop."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_start(self, step: int, model: nn.Module) -> None:
        if step == self.at:
            raise KeyboardInterrupt


def crash(config: RunConfig, at: int, run_dir: Path) -> None:
    """Train config into run_dir and stop at the start of step `at`, as a killed process."""
    task, model, data, held_out = parts(config)
    with pytest.raises(KeyboardInterrupt):
        fit(
            model,
            task.objective,
            data,
            config.train,
            held_out,
            [Crash(at)],
            run_dir=run_dir,
            progress=False,
        )


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    newest = max(steps_on_disk(run_dir / "checkpoints"))
    tensors = load_file(run_dir / "checkpoints" / f"step-{newest:09d}.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "optim."))}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and len(a) > 4
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_resume_after_a_crash_is_bit_identical_task_stream(tmp_path: Path, optimizer: str) -> None:
    config = small(
        model="lstm",
        budget=160,
        eval_every=3,
        checkpoint_every=2,
        optimizer=optimizer,
        stop_at_success=False,
    )  # checkpoints at even steps, evaluations every third: resumed between the two
    task, model, data, held_out = parts(config)
    whole = fit(
        model, task.objective, data, config.train, held_out, run_dir=tmp_path / "a", progress=False
    )
    crash(config, 11, tmp_path / "b")
    task, model, data, held_out = parts(config)  # a new process: fresh objects
    resumed = fit(
        model,
        task.objective,
        data,
        config.train,
        held_out,
        run_dir=tmp_path / "b",
        resume=True,
        progress=False,
    )
    assert_same_weights(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"))
    assert resumed.train_loss == whole.train_loss
    fields = ("step", "sequences", "loss", "correct", "train_loss")
    assert [[getattr(e, f) for f in fields] for e in resumed.evaluations] == [
        [getattr(e, f) for f in fields] for e in whole.evaluations
    ]
    evals = [r["step"] for r in read_jsonl(tmp_path / "b" / "metrics.jsonl")]
    assert evals == sorted(set(evals)), "no evaluation logged twice after the resume"


def dataset(n: int = 30) -> TensorData:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, n, 3, generator=g)
    lengths = torch.randint(2, 7, (n,), generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return TensorData(x, y, lengths, batch=8, seed=1)


def test_tensor_data_epochs_shuffle_and_restore() -> None:
    data = dataset()
    sizes = [data.next_batch().size for _ in range(8)]
    assert sizes == [8, 8, 8, 6, 8, 8, 8, 6], "an epoch is exactly N sequences"
    assert not torch.equal(data.permutation(0), data.permutation(1))
    assert torch.equal(data.permutation(1), dataset().permutation(1))
    state = data.state()
    expected = [data.next_batch() for _ in range(5)]
    again = dataset()
    again.restore(state, {})
    for a in expected:
        b = again.next_batch()
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.lengths, b.lengths)


def test_resume_after_a_crash_is_bit_identical_fixed_dataset(tmp_path: Path) -> None:
    objective = Objective("classification", 3)
    config = TrainConfig(batch=8, budget=150, eval_every=2, lr=1e-2, stop_at_success=False)
    g = torch.Generator().manual_seed(9)
    held_out = Batch(
        torch.randn(6, 10, 3, generator=g),
        torch.randint(0, 3, (10,), generator=g),
        torch.full((10,), 6),
    )

    def model() -> SequenceModel:
        torch.manual_seed(0)
        return SequenceModel(LSTM(3, 5), 3)

    whole = fit(
        model(), objective, dataset(), config, held_out, run_dir=tmp_path / "a", progress=False
    )
    assert whole.sequences == 150 and whole.status == "budget"
    with pytest.raises(KeyboardInterrupt):
        fit(
            model(),
            objective,
            dataset(),
            config,
            held_out,
            [Crash(9)],
            run_dir=tmp_path / "b",
            progress=False,
        )
    fit(
        model(),
        objective,
        dataset(),
        config,
        held_out,
        run_dir=tmp_path / "b",
        resume=True,
        progress=False,
    )
    assert_same_weights(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"))


@pytest.mark.parametrize("damage", ["truncate", "flip", "bad-json", "no-json"])
def test_corrupt_checkpoint_is_reported_and_the_previous_one_used(
    tmp_path: Path, damage: str
) -> None:
    config = small(budget=96, eval_every=4, stop_at_success=False)
    run(config, tmp_path / "a", progress=False)
    crashed = tmp_path / "b"
    crash(config, 10, crashed)
    folder = crashed / "checkpoints"
    assert steps_on_disk(folder) == [8, 4]
    blob, meta = folder / "step-000000008.safetensors", folder / "step-000000008.json"
    if damage == "truncate":
        blob.write_bytes(blob.read_bytes()[:-100])
    elif damage == "flip":
        data_bytes = bytearray(blob.read_bytes())
        data_bytes[-5] ^= 0xFF
        blob.write_bytes(bytes(data_bytes))
    elif damage == "bad-json":
        meta.write_text(meta.read_text()[:40])
    else:
        meta.unlink()
    warnings: list[str] = []
    found = load_latest(folder, warnings.append)
    assert found.step == 4
    assert len(warnings) == 1 and "checkpoint at step 8 is unusable" in warnings[0]
    expected = {
        "truncate": "truncated or corrupt",
        "flip": "truncated or corrupt",
        "bad-json": "not valid JSON",
        "no-json": "is missing",
    }[damage]
    assert expected in warnings[0]
    task, model, data, held_out = parts(config)
    fit(
        model,
        task.objective,
        data,
        config.train,
        held_out,
        run_dir=crashed,
        resume=True,
        progress=False,
    )
    assert_same_weights(final_weights(tmp_path / "a"), final_weights(crashed))


def test_no_usable_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "step-000000004.safetensors").write_bytes(b"\x00" * 10)
    (folder / "step-000000004.json").write_text("{")
    with pytest.raises(CheckpointError, match="no usable checkpoint in .*not valid JSON"):
        load_latest(folder, lambda text: None)


def test_sigkill_at_a_random_moment_then_resume_is_bit_identical(tmp_path: Path) -> None:
    """A real `vanishing train` process is killed with SIGKILL mid-run and resumed."""
    options = [
        "--task",
        "adding",
        "--T",
        "60",
        "--model",
        "lstm",
        "--hidden",
        "16",
        "--chrono",
        "--batch",
        "16",
        "--budget",
        "24000",
        "--eval-every",
        "10",
        "--test-size",
        "64",
        "--lr",
        "0.003",
        "--seed",
        "3",
        "--gradflow-every",
        "7",
    ]
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vanishing.cli",
            "train",
            *options,
            "--out",
            str(tmp_path / "killed"),
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    metrics = None
    while time.time() < deadline:
        found = list((tmp_path / "killed").glob("train-*/metrics.jsonl"))
        if found and len(read_jsonl(found[0])) >= 3:
            metrics = found[0]
            break
        time.sleep(0.05)
    assert metrics is not None, "the child never started training"
    time.sleep(random.uniform(0.0, 0.5))
    child.send_signal(signal.SIGKILL)
    child.wait()
    run_dir = metrics.parent
    assert not (run_dir / "result.json").exists(), "killed before it finished"
    resumed = subprocess.run(
        [sys.executable, "-m", "vanishing.cli", "train", "--resume", str(run_dir), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    config = RunConfig.from_dict(__import__("json").loads((run_dir / "config.json").read_text()))
    run(config, tmp_path / "whole", progress=False)
    assert_same_weights(final_weights(tmp_path / "whole"), final_weights(run_dir))
    # the monitor's lines too: every 7th step once, as in the uninterrupted run
    flow = [[r for r in read_jsonl(d / "metrics.jsonl") if "gradflow" in r]
            for d in (run_dir, tmp_path / "whole")]  # fmt: skip
    assert flow[0] == flow[1] and [r["step"] for r in flow[0]][:2] == [7, 14]


def test_tensor_data_takes_token_ids_without_a_feature_axis() -> None:
    ids = torch.randint(1, 50, (7, 10))  # (T, N)
    data = TensorData(ids, torch.zeros(10, dtype=torch.long), torch.full((10,), 7), batch=4)
    batch = data.next_batch()
    assert batch.x.shape == (7, 4) and batch.x.dtype == torch.int64
    with pytest.raises(ValueError, match=r"x must be \(T, N, I\) or \(T, N\), got shape \(7,\)"):
        TensorData(torch.zeros(7), torch.zeros(7), batch=4)


class Watcher:
    """Asks to stop at the third evaluation after step 0, and records what it was shown."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_evaluation(self, evaluation: object, model: nn.Module) -> bool:
        self.steps.append(evaluation.step)
        return len(self.steps) == 3


def test_on_evaluation_may_stop_the_run(tmp_path: Path) -> None:
    config = small(budget=400)
    _, model, data, held_out = parts(config)
    watcher = Watcher()
    objective = make_task("adding", 20).objective
    result = fit(
        model, objective, data, config.train, held_out, [watcher], tmp_path, progress=False
    )
    assert result.status == "stopped" and watcher.steps == [5, 10, 15] and result.steps == 15
    assert steps_on_disk(tmp_path / "checkpoints")[0] == 15, "a stopped run checkpoints"


def test_early_stopping_waits_patience_then_restores_the_best_weights() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 64, 2, generator=g), torch.randint(0, 2, (64,), generator=g)
    held_out = Batch(
        torch.randn(5, 64, 2, generator=g),
        torch.randint(0, 2, (64,), generator=g),
        torch.full((64,), 5),
    )
    torch.manual_seed(0)
    model = SequenceModel(LSTM(2, 16), 2)
    stopper = EarlyStopping(patience=3)
    config = TrainConfig(batch=16, budget=64 * 200, eval_every=4, lr=3e-2, stop_at_success=False)
    result = fit(
        model,
        Objective("classification", 2),
        TensorData(x, y, batch=16),
        config,
        held_out,
        [stopper],
        progress=False,
    )
    losses = {e.step: e.loss for e in result.evaluations[1:]}  # labels are noise: it overfits
    assert result.status == "stopped" and result.steps < 200 * 4
    assert stopper.best_step == min(losses, key=losses.get)
    assert sorted(losses)[-1] - stopper.best_step == 3 * 4, "stops after 3 without improvement"
    assert stopper.restore(model)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in stopper.best_state.items())
    with pytest.raises(ValueError, match="patience must be >= 1, got 0"):
        EarlyStopping(0)
