"""The trainer: one loop for every command that trains.

`fit(model, objective, data, config, held_out)` trains `model` on batches from `data` (an
endless `TaskStream` or a fixed `TensorData`) until the held-out set passes the objective's
success test, or `config.budget` training sequences are used (a failure, reported as such),
or the loss or a gradient stops being finite (status 'diverged', naming the step and the first
non-finite tensor). Each step: draw a batch, callbacks' on_step_start, forward, loss,
backward, callbacks' on_step_end, finiteness check, clipping (gradflow.clip_grad_norm_, the
one rule), optimizer step. The held-out set is evaluated at step 0, every
`config.eval_every` steps and at the end: first its first `config.eval_probe` sequences, and
the whole set only when those pass the success test (exact when every sequence must pass).

Callbacks (any objects, no base class): before the forward of step s (1-based; the model has
had s - 1 updates) the trainer calls `cb.on_step_start(s, model)`; after the backward, before
clipping and the optimizer step, `cb.on_step_end(s, model, loss)` with the loss tensor and
the raw gradients in the parameters' .grad. Either method may be missing. A dict returned by
on_step_end is appended to metrics.jsonl as {"step": s, **dict}.

With a run folder, the trainer writes `metrics.jsonl` (each evaluation, each callback dict)
and checkpoints (`checkpoint.py`) at every evaluation (or every `checkpoint_every` steps) and
at the end; `resume=True` continues from the newest usable checkpoint, and a resumed run ends
with bit-identical parameters to one never interrupted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor, nn

from vanishing.gradflow import clip_grad_norm_
from vanishing.tasks import Batch, Objective
from vanishing.train.checkpoint import discard_newer, load_latest, save_checkpoint
from vanishing.train.config import TrainConfig
from vanishing.train.data import DataSource
from vanishing.train.metrics import Evaluation, append_jsonl, evaluate, truncate_jsonl
from vanishing.train.optim import make_optimizer
from vanishing.train.runtime import flush_denormal, torch_threads

STATUSES = ("solved", "budget", "diverged", "finished")
"""solved: passed the success test; budget: used the budget without passing it (a failure);
diverged: non-finite loss or gradient; finished: used the budget, no success test to pass."""


@dataclass
class TrainResult:
    """How a run ended: status (STATUSES), steps and sequences used, the sequences at the
    first evaluation that passed the success test (None if none did), every evaluation, the
    training loss of every step, and for a diverged run the message naming the tensor."""

    status: str
    steps: int
    sequences: int
    sequences_to_success: int | None
    evaluations: list[Evaluation]
    train_loss: list[float] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0

    @property
    def final(self) -> Evaluation:
        return self.evaluations[-1]

    def summary(self) -> dict[str, Any]:
        """The result without the per-step losses, as plain JSON values."""
        out = asdict(self)
        del out["train_loss"]
        return out


def first_non_finite(model: nn.Module) -> str | None:
    """Name of the first parameter whose gradient holds NaN or Inf, or None."""
    for name, p in model.named_parameters():
        if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
            kind = "NaN" if bool(torch.isnan(p.grad).any()) else "Inf"
            return f"the gradient of {name} holds {kind}"
    return None


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict]:
    """The optimizer's state as ({'optim.<param>.<key>': tensor}, JSON-able rest)."""
    saved = optimizer.state_dict()
    tensors, plain = {}, {}
    for index, entry in saved["state"].items():
        plain[str(index)] = {}
        for key, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{index}.{key}"] = value
            else:
                plain[str(index)][key] = value
    return tensors, {"param_groups": saved["param_groups"], "state": plain}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], plain: dict):
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in plain["state"].items()}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


def progress_bar(console: Console | None, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[seen]} seq"),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("correct {task.fields[correct]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
    )


def fit(
    model: nn.Module,
    objective: Objective,
    data: DataSource,
    config: TrainConfig,
    held_out: Batch | None = None,
    callbacks: Sequence[object] = (),
    run_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    console: Console | None = None,
    description: str = "train",
) -> TrainResult:
    """Train model (see the module docstring); return how the run ended.

    held_out: the fixed evaluation set (None: no evaluation, no success test). run_dir: where
    metrics.jsonl and checkpoints/ go (None: nothing is written). resume: continue from the
    newest usable checkpoint in run_dir (a fresh start if there is none).
    """
    started = time.perf_counter()
    checkpoints = None if run_dir is None else Path(run_dir) / "checkpoints"
    metrics = None if run_dir is None else Path(run_dir) / "metrics.jsonl"
    if metrics is not None:
        metrics.parent.mkdir(parents=True, exist_ok=True)
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr, config.momentum)
    step, sequences, solved_at = 0, 0, None
    evaluations: list[Evaluation] = []
    train_loss: list[float] = []
    previous_seconds = 0.0
    warn = (console or Console(stderr=True)).print

    if resume and checkpoints is not None:
        found = load_latest(checkpoints, lambda text: warn(f"[yellow]warning:[/] {text}"))
        if found is not None:
            tensors, state = found.tensors, found.state
            model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
            restore_optimizer(optimizer, tensors, state["optimizer"])
            data.restore(state["data"], {k[5:]: v for k, v in tensors.items() if k[:5] == "data."})
            torch.set_rng_state(tensors["rng.torch"])
            step, sequences, solved_at = state["step"], state["sequences"], state["solved_at"]
            evaluations = [Evaluation(**e) for e in state["evaluations"]]
            train_loss = tensors["train_loss"].tolist()
            previous_seconds = state["seconds"]
            discard_newer(checkpoints, step)
        if metrics is not None:
            truncate_jsonl(metrics, step)

    def checkpoint() -> None:
        if checkpoints is None:
            return
        opt_tensors, opt_plain = optimizer_tensors(optimizer)
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors |= opt_tensors | {f"data.{k}": v for k, v in data.tensors().items()}
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["train_loss"] = torch.tensor(train_loss, dtype=torch.float64)
        state = {
            "step": step,
            "sequences": sequences,
            "solved_at": solved_at,
            "evaluations": [asdict(e) for e in evaluations],
            "optimizer": opt_plain,
            "data": data.state(),
            "seconds": previous_seconds + time.perf_counter() - started,
        }
        save_checkpoint(checkpoints, step, tensors, state, config.keep_checkpoints)

    def run_evaluation(mean_train_loss: float | None) -> Evaluation:
        size, loss, correct = 0, math.nan, None
        if held_out is not None:
            size = held_out.size
            if 0 < config.eval_probe < size and objective.has_success_test:
                probe = held_out.take(torch.arange(config.eval_probe))
                size = probe.size
                loss, correct = evaluate(model, objective, probe, config.eval_batch)
            if size == held_out.size or (correct is not None and correct >= objective.required):
                size = held_out.size
                loss, correct = evaluate(model, objective, held_out, config.eval_batch)
        solved = correct is not None and correct >= objective.required and size == held_out.size
        seconds = previous_seconds + time.perf_counter() - started
        result = Evaluation(
            step, sequences, loss, correct, solved, mean_train_loss, seconds, evaluated=size
        )
        evaluations.append(result)
        if metrics is not None:
            append_jsonl(metrics, result.record())
        return result

    def finish(status: str, message: str = "") -> TrainResult:
        seconds = previous_seconds + time.perf_counter() - started
        return TrainResult(
            status, step, sequences, solved_at, evaluations, train_loss, message, seconds
        )

    starts = [cb.on_step_start for cb in callbacks if hasattr(cb, "on_step_start")]
    ends = [cb.on_step_end for cb in callbacks if hasattr(cb, "on_step_end")]
    every = config.checkpoint_every or config.eval_every
    bar = progress_bar(console, progress)
    with flush_denormal(), torch_threads(config.threads), bar:
        bar_id = bar.add_task(description, total=config.budget, seen=0, loss="-", correct="-")

        def show() -> None:
            last = evaluations[-1] if evaluations else None
            correct = "-" if last is None or last.correct is None else f"{last.correct:.1%}"
            loss = f"{train_loss[-1]:.4g}" if train_loss else "-"
            bar.update(bar_id, completed=sequences, seen=sequences, loss=loss, correct=correct)

        if step == 0 and not evaluations:
            if run_evaluation(None).solved:
                solved_at = 0
            checkpoint()
        if solved_at is not None and config.stop_at_success:
            return finish("solved")
        while sequences < config.budget:
            step += 1
            batch = data.next_batch()
            for on_step_start in starts:
                on_step_start(step, model)
            optimizer.zero_grad(set_to_none=True)
            loss = objective.loss(model(batch.x, batch.lengths), batch)
            if not bool(torch.isfinite(loss)):
                return finish("diverged", f"step {step}: the loss is {loss.item()}")
            loss.backward()
            for on_step_end in ends:
                record = on_step_end(step, model, loss)
                if isinstance(record, dict) and metrics is not None:
                    append_jsonl(metrics, {"step": step, **record})
            bad = first_non_finite(model)
            if bad is not None:
                return finish("diverged", f"step {step}: {bad}")
            if config.clip is not None:
                clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            sequences += batch.size
            train_loss.append(loss.item())
            end = sequences >= config.budget
            if held_out is not None and (step % config.eval_every == 0 or end):
                window = train_loss[evaluations[-1].step :]  # the steps since the last one
                result = run_evaluation(sum(window) / len(window))
                if result.solved and solved_at is None:
                    solved_at = sequences
                if result.solved and config.stop_at_success:
                    checkpoint()
                    show()
                    return finish("solved")
            if step % every == 0 or end:
                checkpoint()
            show()
    if solved_at is not None:
        return finish("solved")
    return finish("budget" if objective.has_success_test and held_out is not None else "finished")
