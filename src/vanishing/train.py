"""A small training loop for sequence regression: Adam, optional clipping, a fixed test set.

Several models can be trained side by side on the very same batches (what the demo does):
each step draws one batch from the task and gives every model one Adam step on it. A hook,
called at step 0 and every `hook_every` steps, lets the caller measure the models (e.g.
gradient flow) while they train.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor, nn

from vanishing.tasks import adding_problem

Task = Callable[..., tuple[Tensor, Tensor]]
"""task(batch, T, generator=...) -> x (T, B, I), y (B, out)."""

Hook = Callable[[int, str, nn.Module], None]
"""hook(step, name, model): called at step 0 and every `hook_every` steps, after the update."""


@dataclass
class TrainConfig:
    """What to train for, and how.

    steps: Adam steps per model; batch: sequences per step; lr: Adam's learning rate;
    seed: seeds the weights (the caller's) and the data; clip: if set, the gradient norm
    threshold of Pascanu et al.'s Algorithm 1 (rescale when ||g|| > clip); T: sequence length;
    eval_every: steps between test evaluations (also at 0 and at the end); test_size: size of
    the fixed test set; hook_every: steps between hook calls (0 = only at 0 and at the end).
    """

    steps: int = 4000
    batch: int = 64
    lr: float = 1e-3
    seed: int = 0
    clip: float | None = None
    T: int = 100
    eval_every: int = 100
    test_size: int = 1000
    hook_every: int = 0

    def __post_init__(self) -> None:
        minimum = {"steps": 0, "batch": 1, "T": 2, "eval_every": 1, "test_size": 1}
        for name, low in {**minimum, "hook_every": 0}.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {self.seed!r}")
        for name in ("lr", "clip"):
            value = getattr(self, name)
            if value is None and name == "clip":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> TrainConfig:
        """A config from a mapping; unknown keys raise a ValueError naming the known ones."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown}; expected some of {known}")
        return cls(**values)  # type: ignore[arg-type]


class SequenceRegressor(nn.Module):
    """A recurrent layer, then a Linear read-out of its output at the last step k = T.

    x (T, B, I) -> y_hat (B, out). `recurrent` is any layer with torch.nn.RNN's call
    signature whose output is (T, B, H) (batch_first=False).
    """

    def __init__(self, recurrent: nn.Module, out_features: int = 1) -> None:
        super().__init__()
        self.recurrent = recurrent
        dtype = next(recurrent.parameters()).dtype
        self.readout = nn.Linear(recurrent.hidden_size, out_features, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.recurrent(x)  # (T, B, H)
        return self.readout(out[-1])  # (B, out)


@dataclass
class History:
    """One model's learning curves: train loss per step, test MSE at `test_steps`."""

    train_loss: list[float] = field(default_factory=list)
    test_steps: list[int] = field(default_factory=list)
    test_mse: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final_test_mse(self) -> float:
        return self.test_mse[-1]


def evaluate(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Mean squared error of model(x) against y, without gradients."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        mse = torch.mean((model(x) - y) ** 2).item()
    model.train(was_training)
    return mse


def train(
    models: Mapping[str, nn.Module],
    config: TrainConfig,
    task: Task = adding_problem,
    hook: Hook | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> dict[str, History]:
    """Train every model on the same batches with Adam and MSE; return their histories.

    The test set (config.test_size sequences) and the training batches come from generators
    seeded with config.seed, so a run is reproducible and every model sees the same data.
    If config.clip is set, gradients are clipped with gradflow.clip_grad_norm_.
    """
    if not models:
        raise ValueError("train() expected at least one model")
    dtype = next(next(iter(models.values())).parameters()).dtype
    test_gen = torch.Generator().manual_seed(config.seed + 1_000_003)
    x_test, y_test = task(config.test_size, config.T, generator=test_gen, dtype=dtype)
    data_gen = torch.Generator().manual_seed(config.seed)
    optimizers = {n: torch.optim.Adam(m.parameters(), lr=config.lr) for n, m in models.items()}
    histories = {name: History() for name in models}
    clip = None
    if config.clip is not None:
        from vanishing.gradflow import clip_grad_norm_ as clip

    def measure(step: int) -> None:
        for name, model in models.items():
            if step % config.eval_every == 0 or step == config.steps:
                histories[name].test_steps.append(step)
                histories[name].test_mse.append(evaluate(model, x_test, y_test))
            hook_now = step == config.steps or (config.hook_every and step % config.hook_every == 0)
            if hook is not None and (step == 0 or hook_now):
                hook(step, name, model)

    bar = Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("test MSE {task.fields[mse]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
        transient=False,
    )
    with bar:
        ids = {n: bar.add_task(n, total=config.steps, mse="  -   ") for n in models}
        measure(0)
        for step in range(1, config.steps + 1):
            x, y = task(config.batch, config.T, generator=data_gen, dtype=dtype)
            for name, model in models.items():
                start = time.perf_counter()
                optimizer = optimizers[name]
                optimizer.zero_grad(set_to_none=True)
                loss = torch.mean((model(x) - y) ** 2)
                loss.backward()
                if clip is not None:
                    clip(model.parameters(), config.clip)
                optimizer.step()
                histories[name].train_loss.append(loss.item())
                histories[name].seconds += time.perf_counter() - start
            measure(step)
            for name in models:
                mse = histories[name].test_mse[-1]
                bar.update(ids[name], completed=step, mse=f"{mse:.4f}")
    return histories
