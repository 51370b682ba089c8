"""The demo's experiment: the article's claim, measured. Three models learn the adding problem.

The article's sigmoid RNN, a tanh RNN and an LSTM train one after the other on the same
batches (same task stream, steps, seed, optimizer), each with `train.fit`. Gradient flow is
measured at initialisation and at the end on a fixed probe batch with a loss at the last step
k = T only, by `vanishing.profile` in float64 on a copy of each model, so that norms far below
float32's range are still exact; while they train, `vanishing.monitor` (a callback of `fit`)
reads every few steps the gradients of the training step itself (for the heatmap).
`demo_report.py` turns the result into figures and a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from torch import nn

from vanishing.gradflow import LagProfile, LSTMTerms, lag_history, lstm_terms, monitor, profile
from vanishing.nn import LSTM, RNN
from vanishing.tasks import AddingLe, adding_problem
from vanishing.train import (
    SequenceModel,
    TaskStream,
    TrainConfig,
    fit,
    flush_denormal,
    torch_threads,
)
from vanishing.train.run import held_out_set

MODELS = ("rnn-sigmoid", "rnn-tanh", "lstm")
"""Model kinds the demo knows: the article's sigmoid RNN, a tanh RNN, an LSTM."""

FRACTION = 1e-3  # the gradient horizon's threshold, relative to lag 0


@dataclass
class DemoConfig:
    """Everything a demo run depends on. `quick()` is the 30-second variant the tests use.

    lr 3e-3 and forget_bias 1 (Jozefowicz et al. 2015) let the LSTM solve T = 100 (test MSE
    < 0.01) after 1,250-2,000 steps (measured, seeds 0-2); the RNNs get the same lr, steps
    and batches. On one thread a step of all three models costs ~35 ms (~45 ms without the
    compiled kernel): the default run took 72 s (kernel) / ~145 s (reference) on 2 cores.
    """

    T: int = 100
    hidden: int = 64
    steps: int = 2500
    seed: int = 0
    batch: int = 64
    lr: float = 3e-3
    forget_bias: float = 1.0
    models: tuple[str, ...] = MODELS
    snapshots: int = 25  # monitor measurements of training steps, for the heatmap
    probe: int = 32  # sequences in the fixed probe batch
    terms_probe: int = 8  # of which the LSTM's A, B, C, D terms use (H x H SVDs per step)
    test_size: int = 1000
    eval_every: int = 100
    threads: int = 1  # torch threads; at H = 64 one step's ops are too small to share
    out: Path = Path("runs")

    def __post_init__(self) -> None:
        if isinstance(self.T, bool) or not isinstance(self.T, int) or self.T < 2:
            raise ValueError(f"T must be an integer >= 2 (one marker in each half), got {self.T}")
        for name in ("hidden", "steps", "batch", "snapshots", "probe", "terms_probe", "threads"):
            value = getattr(self, name)
            low = 0 if name == "steps" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value}")
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ValueError(
                f"unknown model(s) {unknown or self.models!r}; expected some of {', '.join(MODELS)}"
            )
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models must not repeat, got {', '.join(self.models)}")
        self.out = Path(self.out)

    @classmethod
    def quick(cls, **overrides: object) -> DemoConfig:
        """A small run (T 30, H 32, 200 steps) that finishes in well under 30 seconds."""
        values: dict[str, object] = dict(
            T=30,
            hidden=32,
            steps=200,
            batch=32,
            snapshots=8,
            probe=16,
            test_size=128,
            eval_every=25,
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def parse_models(text: str) -> tuple[str, ...]:
    """'rnn-sigmoid,lstm' -> ('rnn-sigmoid', 'lstm'); unknown names raise a ValueError."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    bad = [n for n in names if n not in MODELS]
    if bad or not names:
        raise ValueError(
            f"unknown model {', '.join(bad) or repr(text)}; expected some of " + ", ".join(MODELS)
        )
    return names


def display_name(kind: str, config: DemoConfig) -> str:
    """'RNN (sigmoid)', 'RNN (tanh)' or 'LSTM (forget_bias=1)'."""
    if kind == "lstm":
        return f"LSTM (forget_bias={config.forget_bias:g})"
    return f"RNN ({kind.split('-')[1]})"


def build_model(kind: str, config: DemoConfig) -> SequenceModel:
    """One of MODELS with input 2 (value, marker), H = config.hidden, a Linear read-out.

    Seeded with config.seed before construction, so every kind starts from the same stream.
    """
    torch.manual_seed(config.seed)
    if kind == "lstm":
        layer: nn.Module = LSTM(2, config.hidden, forget_bias=config.forget_bias)
    else:
        layer = RNN(2, config.hidden, nonlinearity=kind.split("-")[1])
    return SequenceModel(layer)


@dataclass
class History:
    """One model's learning curves: train loss per step, test MSE at `test_steps`."""

    train_loss: list[float] = field(default_factory=list)
    test_steps: list[int] = field(default_factory=list)
    test_mse: list[float] = field(default_factory=list)

    @property
    def final_test_mse(self) -> float:
        return self.test_mse[-1]


@dataclass
class ModelRun:
    """One model's results: learning curves, probe-batch profiles at the start and the end,
    LSTM terms, and the monitor's lag norms of the training steps (steps, (S, T) by lag)."""

    kind: str
    name: str
    history: History
    steps: list[int] = field(default_factory=list)
    profiles: list[LagProfile] = field(default_factory=list)
    terms: dict[str, LSTMTerms] = field(default_factory=dict)  # 'start', 'end' (LSTM only)
    heatmap: tuple[list[int], np.ndarray] | None = None  # None without training steps

    @property
    def start(self) -> LagProfile:
        return self.profiles[0]

    @property
    def end(self) -> LagProfile:
        return self.profiles[-1]


@dataclass
class DemoResult:
    """What a demo run measured, one ModelRun per model kind."""

    config: DemoConfig
    runs: dict[str, ModelRun]


class Snapshots:
    """A trainer callback: gradient flow of one model before its first update and after its
    last (`finish`), measured on the probe batch by `vanishing.profile` in float64."""

    def __init__(
        self, run: ModelRun, config: DemoConfig, x_probe: torch.Tensor, y_probe: torch.Tensor
    ) -> None:
        self.run, self.config = run, config
        self.x_probe, self.y_probe = x_probe, y_probe

    def mse(self, y_hat: torch.Tensor) -> torch.Tensor:  # reads only h_T: dE_k/dh_t, k = T
        return torch.mean((y_hat - self.y_probe) ** 2)

    def measure(self, step: int, model: nn.Module) -> None:
        (measured,) = profile(
            model, self.x_probe, self.mse, FRACTION, detail="norms", dtype=torch.float64
        )["recurrent"]
        self.run.steps.append(step)
        self.run.profiles.append(measured.lags)
        if self.run.kind == "lstm" and (step == 0 or step == self.config.steps):
            small = measured.trace.select(slice(0, self.config.terms_probe))
            self.run.terms["start" if step == 0 else "end"] = lstm_terms(
                measured.layer, small, exact=True
            )

    def on_step_start(self, step: int, model: nn.Module) -> None:
        if step == 1:  # before the first update
            self.measure(0, model)

    def finish(self, model: nn.Module) -> None:
        """The measurement after the last update (or the only one, with no steps)."""
        if not self.run.steps or self.run.steps[-1] != self.config.steps:
            self.measure(self.config.steps, model)


def run_demo(
    config: DemoConfig, console: Console | None = None, progress: bool = True
) -> DemoResult:
    """Train the models one after the other on the same batches (one seeded stream each) and
    measure their gradient flow as they learn."""
    with flush_denormal(), torch_threads(config.threads):
        models = {kind: build_model(kind, config) for kind in config.models}
        probe_gen = torch.Generator().manual_seed(config.seed + 7919)
        x_probe, y_probe = adding_problem(
            config.probe, config.T, generator=probe_gen, dtype=torch.float64
        )
        every = max(1, config.steps // config.snapshots) if config.steps else 1
        task = AddingLe(config.T)
        train_config = TrainConfig(
            optimizer="adam",
            lr=config.lr,
            batch=config.batch,
            budget=config.steps * config.batch,
            seed=config.seed,
            eval_every=config.eval_every,
            test_size=config.test_size,
            eval_batch=config.test_size,
            threads=config.threads,
        )
        held_out = held_out_set(task, train_config)
        runs = {}
        for kind, model in models.items():
            run = ModelRun(kind, display_name(kind, config), History())
            snapshots = Snapshots(run, config, x_probe, y_probe)
            watch = monitor(model, every=every)  # the heatmap: the training steps themselves
            data = TaskStream(task, config.batch, config.seed)
            result = fit(
                model,
                task.objective,
                data,
                train_config,
                held_out,
                [snapshots, watch],
                progress=progress,
                console=console,
                description=f"{run.name:<21}",
            )
            watch.close()
            snapshots.finish(model)
            run.history = History(
                result.train_loss,
                [e.step for e in result.evaluations],
                [e.loss for e in result.evaluations],
            )
            run.heatmap = lag_history(watch.history).get("recurrent.l0")
            runs[kind] = run
        return DemoResult(config, runs)
