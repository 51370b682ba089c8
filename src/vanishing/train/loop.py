"""A small training loop for sequence regression: Adam, optional clipping, a fixed test set.

Several models can be trained side by side on the very same batches (what the demo does):
each step draws one batch from the task and gives every model one Adam step on it. A hook,
called at step 0 and every `hook_every` steps, lets the caller measure the models (e.g.
gradient flow) while they train.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor, nn

from vanishing.gradflow import clip_grad_norm_
from vanishing.tasks import adding_problem
from vanishing.train.config import TrainConfig

Task = Callable[..., tuple[Tensor, Tensor]]
"""task(batch, T, generator=...) -> x (T, B, I), y (B, out)."""

Hook = Callable[[int, str, nn.Module], None]
"""hook(step, name, model): called at step 0 and every `hook_every` steps, after the update."""


@dataclass
class History:
    """One model's learning curves: train loss per step, test MSE at `test_steps`."""

    train_loss: list[float] = field(default_factory=list)
    test_steps: list[int] = field(default_factory=list)
    test_mse: list[float] = field(default_factory=list)

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
                optimizer = optimizers[name]
                optimizer.zero_grad(set_to_none=True)
                loss = torch.mean((model(x) - y) ** 2)
                loss.backward()
                if config.clip is not None:
                    clip_grad_norm_(model.parameters(), config.clip)
                optimizer.step()
                histories[name].train_loss.append(loss.item())
            measure(step)
            for name in models:
                mse = histories[name].test_mse[-1]
                bar.update(ids[name], completed=step, mse=f"{mse:.4f}")
    return histories
