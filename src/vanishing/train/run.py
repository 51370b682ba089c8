"""One run on a task, in its own folder: what `vanishing train` and each suite run do.

The run folder holds `config.json` (the resolved `RunConfig`, written before training),
`metrics.jsonl` (with `train.gradflow_every`, also the monitor's gradient-flow lines),
`checkpoints/` and, once the run ends, `result.json`. `resume_run(folder)`
continues a run from its folder alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from vanishing.gradflow import monitor
from vanishing.tasks import Task, make_task
from vanishing.train.checkpoint import write_atomic
from vanishing.train.config import TrainConfig, from_dict
from vanishing.train.data import TaskStream
from vanishing.train.loop import TrainResult, fit
from vanishing.train.models import ModelConfig, build_model

HELD_OUT_SEED = 1_000_003
"""The held-out set is drawn from a generator seeded with seed + HELD_OUT_SEED."""


@dataclass
class RunConfig:
    """A task at a length, a model and how to train it; T None is the task's default."""

    task: str = "adding"
    T: int | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if isinstance(self.model, Mapping):
            self.model = ModelConfig.from_dict(self.model)
        if isinstance(self.train, Mapping):
            self.train = TrainConfig.from_dict(self.train)
        self.T = make_task(self.task, self.T).T  # checks the name and T; fills the default

    def make_task(self) -> Task:
        return make_task(self.task, self.T)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        return from_dict(cls, values)

    @property
    def name(self) -> str:
        """'adding-T100-lstm-s0': the run's folder name in a suite."""
        length = "" if self.T is None else f"-T{self.T}"
        kind = self.model.model if self.model.model == "lstm" else f"rnn-{self.model.nonlinearity}"
        return f"{self.task}{length}-{kind}-s{self.train.seed}"


def held_out_set(task: Task, config: TrainConfig):  # noqa: ANN201 (a Batch)
    """The fixed evaluation set of a run: test_size sequences, seeded by the run's seed."""
    generator = torch.Generator().manual_seed(config.seed + HELD_OUT_SEED)
    return task.sample(config.test_size, generator)


def result_record(config: RunConfig, result: TrainResult) -> dict[str, Any]:
    """What result.json holds: the config, how the run ended, its evaluations."""
    return {"config": asdict(config), **result.summary()}


def run(
    config: RunConfig,
    run_dir: Path,
    resume: bool = False,
    callbacks: Sequence[object] = (),
    progress: bool = True,
    console: Console | None = None,
) -> TrainResult:
    """Train config's model on config's task in run_dir (see the module docstring)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_atomic(run_dir / "config.json", json.dumps(asdict(config), indent=1).encode())
    task = config.make_task()
    objective = task.objective
    model = build_model(
        config.model,
        task.input_size,
        objective.outputs,
        objective.per_step,
        task.max_length,
        config.train.seed,
    )
    if config.train.gradflow_every:  # its measurements go to metrics.jsonl
        callbacks = (*callbacks, monitor(model, every=config.train.gradflow_every))
    data = TaskStream(task, config.train.batch, config.train.seed)
    held_out = held_out_set(task, config.train)
    length = "" if config.T is None else f" T={config.T}"
    result = fit(
        model,
        objective,
        data,
        config.train,
        held_out,
        callbacks,
        run_dir,
        resume,
        progress,
        console,
        description=f"{config.task}{length} {config.model.label}",
    )
    write_atomic(run_dir / "result.json", json.dumps(result_record(config, result)).encode())
    return result


def load_config(run_dir: Path) -> RunConfig:
    """The RunConfig saved in run_dir/config.json, or a ValueError saying what is wrong."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a run folder (no config.json)")
    try:
        return RunConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is not a valid run config: {error}") from None


def resume_run(
    run_dir: Path,
    callbacks: Sequence[object] = (),
    progress: bool = True,
    console: Console | None = None,
) -> TrainResult:
    """Continue the run in run_dir from its newest usable checkpoint."""
    return run(load_config(run_dir), run_dir, True, callbacks, progress, console)
